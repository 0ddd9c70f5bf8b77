"""Export a kit bundle's whole pipeline to ONNX, prove parity on held-out rows, write an edge bundle.

Runs on the development machine (it needs scikit-learn, skl2onnx and onnx); the device needs only
:mod:`shipml.edge.runtime`. Three decisions make the export safe to ship:

1. **Named, typed inputs from the schema.** One ONNX input per feature, ``[None, 1]``: numbers
   (float/int/bool) are ``float32``, categories are strings. Nobody has to remember column order, and
   the dtype is explicit — scikit-learn works in float64, ONNX graphs from skl2onnx in float32.
2. **Probabilities as a plain tensor** (``zipmap=False``): a ``(rows, classes)`` float32 array, not a
   list of dicts.
3. **Parity before saving.** The ONNX graph and the scikit-learn pipeline score the same held-out rows;
   the largest probability difference and the label agreement are measured, and an export beyond
   tolerance is refused (:class:`ParityError`) — nothing is written.

Tree models need one more step. A ``HistGradientBoostingClassifier`` sends a row left when
``x <= threshold``, and its thresholds often *equal* a value seen in training (an amount of 45.67 that
many rows share). In float32 the StandardScaler in front of it rounds ``(x - mean) / scale``
differently from float64, so a row sitting exactly on a threshold lands on the other side: measured
here, a max |Δp| of about 0.1 on 5,000 rows. :func:`fold_scaler_into_trees` moves the scaling into the
thresholds (``t * scale + mean``, computed once in float64) and makes the scaler the identity, so the
device compares the raw float32 value with the float32 threshold and ties stay ties.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shipml.bundle import BundleMetadata, sha256_file, write_bundle
from shipml.edge import MODEL_FILE, PROBA_OUTPUT
from shipml.edge.parity import DEFAULT_TOLERANCE, Parity, ParityError, measure_parity
from shipml.edge.runtime import OnnxPredictor
from shipml.errors import ShipmlError
from shipml.schema import FeatureSchema

DEFAULT_PARITY_ROWS = 20_000

__all__ = ["DEFAULT_TOLERANCE", "EdgeExport", "Parity", "ParityError", "export_bundle", "measure_parity",
           "pipeline_to_onnx", "size_on_disk"]


@dataclass
class EdgeExport:
    """What :func:`export_bundle` made."""

    path: Path
    metadata: BundleMetadata
    parity: Parity
    size_bytes: int  # model.onnx on disk
    source_size_bytes: int  # model.joblib of the source bundle
    quantization: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        text = (f"{self.metadata.name} v{self.metadata.version} -> {self.path}: model.onnx "
                f"{self.size_bytes / 1024:,.1f} KiB (model.joblib {self.source_size_bytes / 1024:,.1f} KiB); "
                f"parity: {self.parity.summary()}")
        if self.quantization:
            q = self.quantization
            text += (f"; int8: {q['size_before']/1024:,.1f} -> {q['size_after']/1024:,.1f} KiB, "
                     f"accuracy {q['accuracy_before']:.4f} -> {q['accuracy_after']:.4f}")
        return text


# ---- the graph ---------------------------------------------------------------------------------

def onnx_input_types(schema: FeatureSchema) -> list[tuple[str, Any]]:
    """One named ONNX input per feature: float32 ``[None, 1]`` for numbers, string for categories."""
    return [(f.name, StringTensorType([None, 1]) if f.dtype == "category" else FloatTensorType([None, 1]))
            for f in schema.features]


def fold_scaler_into_trees(pipeline: Pipeline) -> tuple[Pipeline, bool]:
    """A copy of ``pipeline`` whose tree thresholds are float32 values in raw units, scaler the identity.

    For the ONNX graph only (its float64 scikit-learn predictions are *not* the original's). Each
    threshold ``t`` becomes the float32 ``T`` for which a raw value ``x`` typed as a decimal goes left
    (``float32(x) <= T``) exactly when scikit-learn sends it left (``(x - mean) / scale <= t`` in
    float64): see :func:`float32_threshold`. Returns ``(pipeline, False)`` unchanged when the
    classifier is not a histogram gradient boosting model behind a StandardScaler.
    """
    clf = pipeline.steps[-1][1]
    preprocess = pipeline.steps[0][1] if len(pipeline.steps) > 1 else None
    if not isinstance(clf, HistGradientBoostingClassifier) or not hasattr(preprocess, "output_indices_"):
        return pipeline, False
    scalers = [name for name, t, _ in preprocess.transformers_ if isinstance(t, StandardScaler)]
    if not scalers:
        return pipeline, False
    folded = copy.deepcopy(pipeline)
    folded_pre, folded_clf = folded.steps[0][1], folded.steps[-1][1]
    for name in scalers:
        scaler = folded_pre.named_transformers_[name]
        where = folded_pre.output_indices_[name]
        mean = scaler.mean_ if scaler.with_mean else np.zeros(scaler.n_features_in_)
        scale = scaler.scale_ if scaler.with_std else np.ones(scaler.n_features_in_)
        for trees in folded_clf._predictors:
            for tree in trees:
                nodes = tree.nodes
                for k in np.flatnonzero(~nodes["is_leaf"].astype(bool) & ~nodes["is_categorical"].astype(bool)):
                    j = int(nodes["feature_idx"][k]) - where.start
                    if 0 <= j < where.stop - where.start:
                        nodes["num_threshold"][k] = float32_threshold(
                            float(nodes["num_threshold"][k]), float(mean[j]), float(scale[j]))
        if scaler.mean_ is not None:
            scaler.mean_ = np.zeros_like(scaler.mean_)
        if scaler.scale_ is not None:
            scaler.scale_ = np.ones_like(scaler.scale_)
        if getattr(scaler, "var_", None) is not None:
            scaler.var_ = np.ones_like(scaler.var_)
    return folded, True


def float32_threshold(t: float, mean: float, scale: float, steps: int = 4) -> float:
    """The float32 threshold in raw units that splits decimals as ``(x - mean) / scale <= t`` does.

    ``t * scale + mean`` is the boundary, but scikit-learn's thresholds often sit within one float64
    ulp of a scaled training value, on either side: float32 rounding alone would then send that value
    the wrong way. So the float32 neighbours of the boundary are tried, each read back as the shortest
    decimal that rounds to it (what a user types: 114.5, 45.67) and judged by scikit-learn's own float64
    arithmetic; the largest one that goes left wins.
    """
    def goes_left(c: np.float32) -> bool:
        return (float(str(c)) - mean) / scale <= t  # str() of a float32 is its shortest decimal

    v = np.float32(t * scale + mean)
    down, up = np.float32(-np.inf), np.float32(np.inf)
    for _ in range(steps):
        if goes_left(v):
            nxt = np.nextafter(v, up)
            if not goes_left(nxt):
                return float(v)
            v = nxt
        else:
            v = np.nextafter(v, down)
    return float(v)


def pipeline_to_onnx(pipeline: Pipeline, schema: FeatureSchema, target_opset: int | None = None
                     ) -> tuple[onnx.ModelProto, bool]:
    """The whole pipeline (preprocessing included) as one ONNX graph; also says if the scaler was folded."""
    ready, folded = fold_scaler_into_trees(pipeline)
    try:
        model = convert_sklearn(
            ready, initial_types=onnx_input_types(schema), target_opset=target_opset,
            options={id(ready): {"zipmap": False}}, name="shipml",
        )
    except Exception as exc:  # skl2onnx raises many types; the user needs one line
        raise ShipmlError(f"skl2onnx {skl2onnx.__version__} cannot convert this pipeline: "
                          f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from None
    outputs = [o.name for o in model.graph.output]
    if PROBA_OUTPUT not in outputs:
        raise ShipmlError(f"the converted graph has no '{PROBA_OUTPUT}' output (it has {outputs})")
    return model, folded


def opsets(model: onnx.ModelProto) -> dict[str, int]:
    return {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}


# ---- parity ------------------------------------------------------------------------------------

def holdout_rows(metadata: BundleMetadata, n_rows: int = DEFAULT_PARITY_ROWS) -> pd.DataFrame:
    """Fresh rows the model never saw: generated with a seed other than the training data's."""
    from shipml.data import make_transactions

    seed = int(metadata.training_data.get("seed", 0)) + 10_007
    return make_transactions(n_rows, seed=seed)


def _draft_metadata(source: BundleMetadata, model: onnx.ModelProto, folded: bool, name: str | None,
                    version: int | None) -> BundleMetadata:
    inputs = {f.name: ("string" if f.dtype == "category" else "float32") for f in source.schema.features}
    return BundleMetadata(
        name=name or source.name, version=source.version if version is None else version, backend="onnx",
        model_file=MODEL_FILE, model_kind=source.model_kind, schema=source.schema,
        class_labels=list(source.class_labels), class_names=list(source.class_names),
        metrics=dict(source.metrics), training_data=dict(source.training_data),
        decision_threshold=source.decision_threshold,
        libraries={"onnxruntime": ort.__version__, "onnx": onnx.__version__, "skl2onnx": skl2onnx.__version__,
                   "scikit-learn": sklearn.__version__, "numpy": np.__version__},
        extra={"onnx": {"opset": opsets(model), "proba_output": PROBA_OUTPUT, "inputs": inputs,
                        "ir_version": int(model.ir_version), "scaler_folded_into_trees": folded,
                        "quantized": False}},
    )


def export_bundle(
    bundle: str | Path, out: str | Path, *, holdout: pd.DataFrame | None = None,
    parity_rows: int = DEFAULT_PARITY_ROWS, tolerance: float = DEFAULT_TOLERANCE, quantize: bool = False,
    quantized_min_agreement: float = 0.99, quantized_max_auc_drop: float = 0.02, name: str | None = None,
    version: int | None = None,
) -> EdgeExport:
    """Export the scikit-learn bundle ``bundle`` to an ONNX edge bundle in the new folder ``out``.

    Parity is measured on ``holdout`` (or ``parity_rows`` fresh rows) before anything is written;
    beyond ``tolerance`` (max |Δp|) or with any label flip, :class:`ParityError` is raised. With
    ``quantize``, the float graph must pass that check, then its int8 version must agree with
    scikit-learn on the label of at least ``quantized_min_agreement`` of the rows and (when the rows
    hold the target) lose at most ``quantized_max_auc_drop`` of ROC AUC. Its max |Δp| is reported, not
    gated: int8 activations are coarse for rare outlier rows, which is the trade-off being measured.
    The edge bundle holds the int8 graph and both sets of figures.
    """
    from shipml.models import SklearnPredictor

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ShipmlError(f"{out}: exists and is not an empty folder; choose a new folder for the edge bundle")
    if not tolerance >= 0:
        raise ShipmlError(f"tolerance must be 0 or more, got {tolerance}")
    source = SklearnPredictor.load(bundle)  # verifies hashes and library versions first
    if source.metadata.backend != "sklearn":
        raise ShipmlError(f"{bundle}: already a '{source.metadata.backend}' bundle; export a scikit-learn bundle")
    model, folded = pipeline_to_onnx(source.pipeline, source.schema)
    metadata = _draft_metadata(source.metadata, model, folded, name, version)
    rows = holdout if holdout is not None else holdout_rows(source.metadata, parity_rows)
    validation = source.validate(rows)
    validation.raise_if_invalid()
    expected = source.predict_proba(rows)
    blob = model.SerializeToString()
    got = OnnxPredictor.from_bytes(blob, metadata).predict_proba(rows)
    parity = measure_parity(expected, got, tolerance)
    if not parity.ok:
        raise ParityError(f"parity check failed, edge bundle not written: {parity.summary()}")
    metadata.extra["parity"] = parity.to_dict()
    report: dict[str, Any] = {}
    if quantize:
        from shipml.edge.quantize import quantize_checked

        blob, report = quantize_checked(blob, rows, source.schema, expected, metadata,
                                        min_agreement=quantized_min_agreement, max_auc_drop=quantized_max_auc_drop)
        metadata.extra["onnx"]["quantized"] = True
        metadata.extra["quantization"] = report
    metadata.extra["onnx"]["size_bytes"] = len(blob)
    metadata.extra["source"] = {"name": source.name, "version": source.version, "backend": "sklearn",
                                "model_sha256": sha256_file(source.path / source.metadata.model_file)}
    _write_atomically(out, blob, metadata, source.path / "reference.json")
    return EdgeExport(path=out, metadata=metadata, parity=parity, size_bytes=(out / MODEL_FILE).stat().st_size,
                      source_size_bytes=(source.path / source.metadata.model_file).stat().st_size,
                      quantization=report)


def _write_atomically(out: Path, blob: bytes, metadata: BundleMetadata, reference: Path | None = None) -> None:
    """Write the bundle in a hidden sibling folder, then move it to ``out``: never a half-written bundle."""
    staging = Path(tempfile.mkdtemp(prefix=".edge-", dir=out.parent if out.parent.exists() else None))
    try:
        (staging / MODEL_FILE).write_bytes(blob)
        if reference is not None and reference.is_file():  # the source's reference profile: drift monitoring
            (staging / reference.name).write_bytes(reference.read_bytes())
        write_bundle(staging, metadata)
        staging.chmod(0o755)  # mkdtemp makes it owner-only; a bundle must be readable by a non-root server
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        shutil.move(str(staging), str(out))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def size_on_disk(bundle: str | Path) -> dict[str, int]:
    """Bytes of each file in a bundle folder, plus ``total``."""
    sizes = {p.name: p.stat().st_size for p in sorted(Path(bundle).iterdir()) if p.is_file()}
    sizes["total"] = sum(sizes.values())
    return sizes
