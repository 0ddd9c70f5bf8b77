"""Edge deployment: export a bundle to ONNX (dev machine), run it with onnxruntime alone (device).

Importing ``shipml.edge`` is cheap on purpose. The device side — :mod:`shipml.edge.runtime` (the
:class:`~shipml.edge.runtime.OnnxPredictor`) and :mod:`shipml.edge.device` (``python -m shipml.edge``)
— needs only numpy, onnxruntime and the standard library. The dev side — :mod:`shipml.edge.export`
and :mod:`shipml.edge.quantize` — needs scikit-learn, skl2onnx and onnx, and is imported only there.
"""

MODEL_FILE = "model.onnx"
PROBA_OUTPUT = "probabilities"
