"""The edge runtime: an ONNX edge bundle served by onnxruntime, with numpy and the stdlib only.

No scikit-learn, no pandas, no onnx package: what a small device (or a slim container) installs is
``numpy`` and ``onnxruntime``. The session is set up for such a device: one intra-op thread, one
inter-op thread, sequential execution, no busy-waiting threads, every graph optimisation on.

Two call paths:

* :meth:`OnnxPredictor.predict_proba` takes columnar data (a dict of lists/arrays, or a DataFrame —
  read column by column, pandas is never imported) and runs every row in one call.
* :meth:`OnnxPredictor.predict_proba_one` takes one row as a mapping and is the lean path for a REST
  server: the feed dict is built from prebuilt names and dtypes, nothing else.

Inputs are converted to the graph's types here (float32 for numbers, str for categories), so the
classic float64-vs-float32 mistake cannot happen through the predictor; :func:`explain_type_error`
turns onnxruntime's message into one clear line for anyone calling a session directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import onnxruntime as ort

from shipml.bundle import BundleMetadata, verify_bundle
from shipml.edge import PROBA_OUTPUT
from shipml.errors import BundleError, SchemaError, ShipmlError
from shipml.predictor import Predictor

_NUMPY_OF = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(string)": np.str_,
             "tensor(int64)": np.int64}
_NAME_OF = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(string)": "string",
            "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(bool)": "bool"}


def session_options(threads: int = 1) -> ort.SessionOptions:
    """Options for a small device: ``threads`` intra-op threads (1 by default), sequential, no spinning."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: a device log is not a notebook
    return options


def open_session(model: str | Path | bytes, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime session on the CPU with :func:`session_options`."""
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, session_options(threads), providers=["CPUExecutionProvider"])


def explain_type_error(error: Exception, session: ort.InferenceSession,
                       feeds: Mapping[str, Any] | None = None) -> ShipmlError:
    """Turn onnxruntime's "Unexpected input data type" into one line that says what to do.

    onnxruntime does not say *which* input was wrong; given the ``feeds``, the culprits are named.
    """
    text = str(error)
    match = re.search(r"Actual: \((tensor\(\w+\))\) , expected: \((tensor\(\w+\))\)", text)
    if not match:
        return ShipmlError(f"onnxruntime refused the input: {text.strip().splitlines()[-1]}")
    actual, expected = match.groups()
    names = [i.name for i in session.get_inputs() if i.type == expected]
    wanted = _NUMPY_OF.get(expected)
    if feeds is not None and wanted is not None and wanted is not np.str_:
        wrong = [n for n in names if n in feeds and np.asarray(feeds[n]).dtype != wanted]
        names = wrong or names
    which = f"input '{names[0]}'" if len(names) == 1 else f"inputs {', '.join(repr(n) for n in names)}"
    hint = (" — numpy and pandas make float64 by default: cast with .astype(np.float32)"
            if expected == "tensor(float)" and actual == "tensor(double)" else "")
    return ShipmlError(
        f"{which} of the ONNX model expect {_NAME_OF.get(expected, expected)} but got "
        f"{_NAME_OF.get(actual, actual)}{hint} (shipml's OnnxPredictor converts types for you)"
    )


class OnnxPredictor(Predictor):
    """A bundle whose model is an ONNX graph (``metadata.backend == "onnx"``)."""

    backend = "onnx"

    def __init__(self, path: Path | None, metadata: BundleMetadata, session: ort.InferenceSession,
                 model_size: int | None = None) -> None:
        super().__init__(path, metadata)
        self._model_size = model_size
        path = path or f"<in-memory {metadata.name}>"  # for error messages
        self.session = session
        graph_inputs = {i.name: i.type for i in session.get_inputs()}
        names = metadata.schema.names
        missing = [n for n in names if n not in graph_inputs]
        if missing or len(graph_inputs) != len(names):
            raise BundleError(f"{path}: the ONNX graph's inputs {sorted(graph_inputs)} do not match the "
                              f"bundle schema {names}")
        unsupported = [n for n in names if graph_inputs[n] not in _NUMPY_OF]
        if unsupported:
            raise BundleError(f"{path}: unsupported ONNX input type for {', '.join(unsupported)}")
        # Prebuilt once: (name, numpy dtype, is-string) in schema order, and the one output we fetch.
        self._inputs: list[tuple[str, Any, bool]] = [
            (n, _NUMPY_OF[graph_inputs[n]], graph_inputs[n] == "tensor(string)") for n in names
        ]
        outputs = [o.name for o in session.get_outputs()]
        proba = metadata.extra.get("onnx", {}).get("proba_output", PROBA_OUTPUT)
        if proba not in outputs:
            raise BundleError(f"{path}: the ONNX graph has no output '{proba}' (it has {outputs})")
        self._outputs = [proba]
        self._labels = np.asarray(metadata.class_labels)

    @classmethod
    def load(cls, path: str | Path, threads: int = 1, *, trusted_keys: Any = None) -> Self:
        """Verify the bundle's hashes (and signature), then open its graph with small-device session options."""
        path = Path(path)
        metadata = verify_bundle(path, trusted_keys=trusted_keys)
        if metadata.backend != cls.backend:
            raise BundleError(f"{path}: a '{metadata.backend}' bundle, not an ONNX edge bundle "
                              "(make one with 'shipml edge export')")
        try:
            session = open_session(path / metadata.model_file, threads=threads)
        except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BundleError(f"{path}: onnxruntime {ort.__version__} cannot load "
                              f"{metadata.model_file}: {first}") from None
        return cls(path, metadata, session)

    @classmethod
    def from_bytes(cls, model: bytes, metadata: BundleMetadata, threads: int = 1) -> Self:
        """A predictor over an ONNX graph held in memory (an export's parity check, quantization)."""
        return cls(None, metadata, open_session(model, threads=threads), model_size=len(model))

    # ---- columnar data: many rows, one call ------------------------------------------------------
    def feeds(self, data: Any) -> dict[str, np.ndarray]:
        """The graph's input dict for columnar ``data``: one (rows, 1) array per feature, right dtype."""
        out = {}
        for name, dtype, is_string in self._inputs:
            try:
                column = data[name]
            except (KeyError, IndexError):
                raise SchemaError(f"missing column '{name}'") from None
            out[name] = np.asarray(column, dtype=object if is_string else dtype).reshape(-1, 1)
        return out

    def predict_proba(self, data: Any) -> np.ndarray:
        """Probabilities, shape (rows, classes), float32, for valid columnar data."""
        return self.run(self.feeds(data))

    # ---- one row: the lean path for a REST server ---------------------------------------------------
    def feeds_one(self, row: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The input dict for one row given as ``{feature: value}``: seven tiny arrays, nothing else."""
        try:
            return {name: np.array([[row[name]]], dtype=dtype) for name, dtype, _ in self._inputs}
        except KeyError as exc:
            raise SchemaError(f"missing field '{exc.args[0]}'") from None
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"a field has the wrong type: {exc}") from None

    def predict_proba_one(self, row: Mapping[str, Any]) -> np.ndarray:
        """Probabilities of one (valid) row, shape (classes,)."""
        return self.session.run(self._outputs, self.feeds_one(row))[0][0]

    def predict_one(self, row: Mapping[str, Any]) -> Any:
        """The most probable class label of one (valid) row."""
        return self._labels[self.decide_one(self.predict_proba_one(row))].item()

    # ---- the raw session, with errors explained ----------------------------------------------------
    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run the graph on ready-made feeds; a type mistake becomes one clear :class:`ShipmlError`."""
        try:
            return self.session.run(self._outputs, feeds)[0]
        except Exception as exc:  # onnxruntime's InvalidArgument & co. are not importable portably
            if "Unexpected input data type" in str(exc):
                raise explain_type_error(exc, self.session, feeds) from None
            raise

    @property
    def model_bytes(self) -> int:
        """Size of the ONNX graph (its file on disk, or the bytes it was built from)."""
        if self.path is None:
            return self._model_size or 0
        return (self.path / self.metadata.model_file).stat().st_size
