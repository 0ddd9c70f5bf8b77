import shutil

import numpy as np
import pytest
from shipml.bundle import SUMS_FILE, verify_bundle
from shipml.errors import BundleError, ShipmlError
from shipml.models import SklearnPredictor, build_pipeline, train
from shipml.predictor import load_predictor


@pytest.mark.parametrize("kind", ["lr", "hgb"])
def test_bundle_metadata_is_complete(request, kind):
    bundle = request.getfixturevalue(f"{kind}_bundle")
    m = verify_bundle(bundle)
    assert m.name == f"fraud-{kind}" and m.version == 1 and m.backend == "sklearn"
    assert m.schema.names[0] == "amount" and m.schema["hour"].max == 23
    assert m.class_labels == [0, 1] and m.class_names == ["legit", "fraud"]
    assert m.metrics["roc_auc"] > 0.8
    assert len(m.training_data["fingerprint"]) == 64
    assert {"scikit-learn", "numpy", "joblib", "python"} <= set(m.libraries)
    assert m.created_at.endswith("+00:00")
    listed = (bundle / SUMS_FILE).read_text()
    assert "model.joblib" in listed and "metadata.json" in listed


def test_hgb_beats_lr_on_held_out_data(lr_bundle, hgb_bundle):
    assert verify_bundle(hgb_bundle).metrics["roc_auc"] > verify_bundle(lr_bundle).metrics["roc_auc"]


def test_predictor_interface(lr_bundle, tiny_df):
    p = load_predictor(lr_bundle)
    assert isinstance(p, SklearnPredictor) and p.name == "fraud-lr" and p.version == 1
    proba = p.predict_proba(tiny_df)
    assert proba.shape == (len(tiny_df), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(np.unique(p.predict(tiny_df))) <= {0, 1}
    columns = p.validate(tiny_df.head(50)).columns  # converted arrays give the same answer
    np.testing.assert_allclose(p.predict_proba(columns), proba[:50])


def test_one_changed_byte_is_refused(lr_bundle, tmp_path):
    copy = shutil.copytree(lr_bundle, tmp_path / "copy")
    model = copy / "model.joblib"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.joblib does not match its sha256"):
        load_predictor(copy)


def test_edited_metadata_and_added_file_are_refused(lr_bundle, tmp_path):
    copy = shutil.copytree(lr_bundle, tmp_path / "copy")
    meta = copy / "metadata.json"
    meta.write_text(meta.read_text().replace('"version": 1', '"version": 2'))
    with pytest.raises(BundleError, match="metadata.json does not match"):
        load_predictor(copy)
    copy2 = shutil.copytree(lr_bundle, tmp_path / "copy2")
    (copy2 / "evil.py").write_text("print('hi')")
    with pytest.raises(BundleError, match="not covered by SHA256SUMS: evil.py"):
        load_predictor(copy2)


def test_other_library_versions_are_refused(lr_bundle, tmp_path):
    import json

    from shipml.bundle import BundleMetadata, write_bundle

    copy = shutil.copytree(lr_bundle, tmp_path / "copy")
    m = BundleMetadata.from_dict(json.loads((copy / "metadata.json").read_text()))
    m.libraries["scikit-learn"] = "0.22.2"
    (copy / "SHA256SUMS").unlink()
    write_bundle(copy, m)  # a consistent bundle, made "elsewhere"
    with pytest.raises(BundleError, match=r"made with scikit-learn 0\.22\.2 \(installed: "):
        load_predictor(copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="metadata.json is missing"):
        load_predictor(tmp_path)


def test_unknown_model_kind():
    with pytest.raises(ShipmlError, match="unknown model 'svm'"):
        build_pipeline("svm")


def test_training_data_with_one_class_is_refused(tiny_df):
    with pytest.raises(ShipmlError, match="only one class"):
        train(tiny_df[tiny_df.is_fraud == 0], "lr")
