"""Export: parity on held-out rows for lr and hgb, refusal beyond tolerance, bundle contents, quantization."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from shipml.bundle import verify_bundle
from shipml.edge.export import ParityError, export_bundle, float32_threshold, measure_parity
from shipml.edge.runtime import OnnxPredictor
from shipml.errors import BundleError, ShipmlError
from shipml.models import SklearnPredictor
from shipml.predictor import load_predictor


@pytest.mark.parametrize("kind", ["lr", "hgb"])
def test_parity_on_held_out_rows(kind, request, heldout):
    edge = request.getfixturevalue(f"{kind}_edge")
    source = request.getfixturevalue(f"{kind}_bundle")
    onnx_p, skl_p = load_predictor(edge), load_predictor(source)
    assert isinstance(onnx_p, OnnxPredictor) and not isinstance(skl_p, OnnxPredictor)
    expected, got = skl_p.predict_proba(heldout), onnx_p.predict_proba(heldout)
    assert got.dtype == np.float32 and got.shape == expected.shape == (len(heldout), 2)
    assert np.abs(got - expected).max() <= 1e-5
    assert (onnx_p.predict(heldout) == skl_p.predict(heldout)).all()


@pytest.mark.parametrize("kind", ["lr", "hgb"])
def test_edge_bundle_records_what_a_device_needs(kind, request):
    edge = request.getfixturevalue(f"{kind}_edge")
    m = verify_bundle(edge)
    assert (m.backend, m.model_file, m.model_kind) == ("onnx", "model.onnx", kind)
    # reference.json: the source bundle's drift reference, carried along for monitoring on the device
    assert sorted(p.name for p in edge.iterdir()) == ["SHA256SUMS", "metadata.json", "model.onnx", "reference.json"]
    assert m.libraries["onnxruntime"] == ort.__version__ and "onnx" in m.libraries
    assert m.extra["onnx"]["opset"]["ai.onnx"] >= 9
    assert m.extra["onnx"]["inputs"]["merchant_category"] == "string"
    assert m.extra["onnx"]["inputs"]["amount"] == "float32"
    parity = m.extra["parity"]
    assert parity["rows"] == 5_000 and parity["label_flips"] == 0 and parity["max_abs_diff"] <= 1e-5
    assert m.extra["onnx"]["size_bytes"] == (edge / "model.onnx").stat().st_size
    assert m.extra["onnx"]["scaler_folded_into_trees"] is (kind == "hgb")


def test_onnx_inputs_are_named_and_typed(hgb_edge):
    p = OnnxPredictor.load(hgb_edge)
    types = {i.name: (i.type, i.shape) for i in p.session.get_inputs()}
    assert list(types) == p.schema.names
    assert types["amount"] == ("tensor(float)", [None, 1])
    assert types["merchant_category"] == ("tensor(string)", [None, 1])


def test_export_beyond_tolerance_is_refused_and_writes_nothing(hgb_bundle, tmp_path):
    out = tmp_path / "refused"
    with pytest.raises(ParityError, match=r"parity check failed, edge bundle not written: max \|Δp\|"):
        export_bundle(hgb_bundle, out, parity_rows=2_000, tolerance=0.0)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging folder left behind


def test_export_refuses_a_non_empty_folder_and_a_tampered_source(lr_bundle, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ShipmlError, match="not an empty folder"):
        export_bundle(lr_bundle, tmp_path / "full")
    bad = shutil.copytree(lr_bundle, tmp_path / "bad-src")
    (bad / "model.joblib").write_bytes((bad / "model.joblib").read_bytes() + b"\0")
    with pytest.raises(BundleError, match="sha256"):
        export_bundle(bad, tmp_path / "out")


def test_tampered_edge_bundle_is_refused(hgb_edge, tmp_path):
    copy = shutil.copytree(hgb_edge, tmp_path / "tampered")
    blob = bytearray((copy / "model.onnx").read_bytes())
    blob[len(blob) // 2] ^= 1
    (copy / "model.onnx").write_bytes(bytes(blob))
    with pytest.raises(BundleError, match="model.onnx does not match its sha256"):
        load_predictor(copy)
    meta = shutil.copytree(hgb_edge, tmp_path / "meta")
    text = json.loads((meta / "metadata.json").read_text())
    text["version"] = 99
    (meta / "metadata.json").write_text(json.dumps(text))
    with pytest.raises(BundleError, match="metadata.json does not match"):
        OnnxPredictor.load(meta)


def test_onnx_predictor_refuses_a_scikit_learn_bundle(lr_bundle):
    with pytest.raises(BundleError, match="not an ONNX edge bundle"):
        OnnxPredictor.load(lr_bundle)


def test_float32_threshold_keeps_ties_on_the_side_scikit_learn_chose():
    mean, scale = 37.25, 91.0
    exact = (114.5 - mean) / scale
    below = float(np.nextafter(exact, -np.inf))  # 114.5 goes right in scikit-learn
    assert (114.5 - mean) / scale > below
    assert np.float32(114.5) > np.float32(float32_threshold(below, mean, scale))
    assert np.float32(114.5) <= np.float32(float32_threshold(exact, mean, scale))  # a tie goes left
    # far from any tie it is simply the boundary in raw units, rounded to float32
    assert float32_threshold(0.0, mean, scale) == pytest.approx(mean, abs=1e-5)


def test_measure_parity_counts_flips():
    a = np.array([[0.9, 0.1], [0.4, 0.6]])
    p = measure_parity(a, np.array([[0.9, 0.1], [0.6, 0.4]]), 0.5)
    assert (p.label_flips, p.label_agreement, p.ok) == (1, 0.5, False)
    assert p.max_abs_diff == pytest.approx(0.2)


@pytest.mark.slow
def test_quantized_mlp_is_smaller_and_still_accurate(mlp_bundle, tmp_path, heldout):
    plain = export_bundle(mlp_bundle, tmp_path / "mlp-f32", parity_rows=5_000)
    int8 = export_bundle(mlp_bundle, tmp_path / "mlp-int8", parity_rows=5_000, quantize=True)
    q = int8.quantization
    assert int8.metadata.extra["onnx"]["quantized"] is True
    assert int8.size_bytes < plain.size_bytes and q["size_after"] < 0.75 * q["size_before"]
    assert q["vs_float_onnx"]["label_agreement"] >= 0.99
    assert abs(q["accuracy_after"] - q["accuracy_before"]) <= 0.01
    assert q["roc_auc_after"] >= q["roc_auc_before"] - 0.02
    skl = SklearnPredictor.load(mlp_bundle).predict(heldout)
    assert (load_predictor(int8.path).predict(heldout) == skl).mean() >= 0.99


def test_quantizing_a_tree_model_is_refused(hgb_bundle, tmp_path):
    with pytest.raises(ShipmlError, match="nothing to quantize"):
        export_bundle(hgb_bundle, tmp_path / "q", parity_rows=500, quantize=True)


def test_exported_bundle_is_readable_by_other_users(lr_bundle, tmp_path):
    """A non-root server (uid 10001 in the image) must read a mounted edge bundle."""
    out = export_bundle(lr_bundle, tmp_path / "edge", parity_rows=500).path
    assert out.stat().st_mode & 0o005 == 0o005
