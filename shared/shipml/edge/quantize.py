"""Dynamic int8 quantization with onnxruntime: smaller weights, maybe faster, a little less exact.

*Dynamic* quantization stores the weights of MatMul/Gemm nodes as int8 (4× smaller than float32) and
quantizes activations on the fly at run time, so no calibration data is needed. It helps models whose
size is in dense weights — the MLP. Trees (hgb) and the linear model (lr) compile to ONNX-ML operators
that have no int8 form: quantizing them changes nothing, so the kit refuses instead of pretending.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from shipml.bundle import BundleMetadata
from shipml.edge.parity import Parity, ParityError, measure_parity
from shipml.errors import ShipmlError
from shipml.schema import FeatureSchema
from shipml.timing import time_calls

QUANTIZABLE_OPS = frozenset({"MatMul", "Gemm"})


def quantizable_nodes(model_bytes: bytes) -> int:
    import onnx

    model = onnx.load_from_string(model_bytes)
    return sum(node.op_type in QUANTIZABLE_OPS for node in model.graph.node)


def quantize_model(model_bytes: bytes) -> bytes:
    """The int8 (dynamic, per-tensor, signed weights) version of an ONNX graph, as bytes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not quantizable_nodes(model_bytes):
        raise ShipmlError("nothing to quantize: this graph has no MatMul/Gemm weights (trees and the linear "
                          "model compile to ONNX-ML operators); quantization is for the mlp model")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer advises pre-processing via the root logger; not for tiny MLPs
    try:
        with tempfile.TemporaryDirectory(prefix="shipml-quant-") as tmp:
            src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(model_bytes)
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
            return dst.read_bytes()
    finally:
        root.setLevel(level)


def single_row_p50_us(predictor: Any, row: dict[str, Any], calls: int = 400) -> float:
    """Median microseconds of ``predictor.predict_proba_one(row)`` over ``calls`` calls (after warm-up)."""
    samples_ms = time_calls(lambda _: predictor.predict_proba_one(row), calls, warmup=20)
    return float(np.median(samples_ms) * 1000)


def quantization_report(float_bytes: bytes, int8_bytes: bytes, rows: Any, schema: FeatureSchema,
                        reference: np.ndarray, metadata: BundleMetadata) -> dict[str, Any]:
    """Size, single-row latency and accuracy of the float and int8 graphs on the same held-out rows."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    from shipml.edge.runtime import OnnxPredictor

    target = np.asarray(rows[schema.target]) if schema.target and schema.target in rows else None
    first = {n: _scalar(rows[n], 0) for n in schema.names}
    out: dict[str, Any] = {"size_before": len(float_bytes), "size_after": len(int8_bytes)}
    probas = {}
    for label, blob in (("before", float_bytes), ("after", int8_bytes)):
        predictor = OnnxPredictor.from_bytes(blob, metadata)
        probas[label] = predictor.predict_proba(rows)
        out[f"p50_us_{label}"] = single_row_p50_us(predictor, first)
        if target is not None:
            out[f"accuracy_{label}"] = float(accuracy_score(target, probas[label].argmax(axis=1)))
            out[f"roc_auc_{label}"] = float(roc_auc_score(target, probas[label][:, 1]))
    out["parity"] = measure_parity(reference, probas["after"], 0.0).to_dict()
    out["vs_float_onnx"] = measure_parity(probas["before"], probas["after"], 0.0).to_dict()
    return out


def _scalar(column: Any, i: int) -> Any:
    value = column.iloc[i] if hasattr(column, "iloc") else column[i]
    return value.item() if isinstance(value, np.generic) else value


def quantize_checked(blob: bytes, rows: Any, schema: FeatureSchema, expected: np.ndarray, metadata: BundleMetadata,
                     *, min_agreement: float, max_auc_drop: float) -> tuple[bytes, dict[str, Any]]:
    """The int8 graph of ``blob`` and its report; :class:`ParityError` when it strays too far from ``expected``.

    Gated on label agreement (at least ``min_agreement``) and ROC AUC (at most ``max_auc_drop`` lost when
    the rows hold the target); its max |Δp| is reported, not gated: int8 activations are coarse for rare
    outlier rows, which is the trade-off being measured.
    """
    int8 = quantize_model(blob)
    report = quantization_report(blob, int8, rows, schema, expected, metadata)
    qparity = Parity(**report["parity"])
    auc_drop = report.get("roc_auc_before", 0.0) - report.get("roc_auc_after", 0.0)
    if qparity.label_agreement < min_agreement or auc_drop > max_auc_drop:
        raise ParityError(f"int8 model too far from scikit-learn, edge bundle not written: labels agree on "
                          f"{qparity.label_agreement:.2%} (minimum {min_agreement:.0%}), ROC AUC "
                          f"drop {auc_drop:.4f} (maximum {max_auc_drop})")
    return int8, report
