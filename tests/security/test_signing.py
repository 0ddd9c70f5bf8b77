"""Signed bundles: every refusal, key rotation, and the signature covering every listed artifact."""

from __future__ import annotations

import json
import shutil

import pytest
from shipml.bundle import SIGNATURE_FILE, SUMS_FILE, sha256_file, sign_bundle, verify_bundle
from shipml.errors import BundleError, ShipmlError
from shipml.predictor import load_predictor
from shipml.signing import TrustedKeys, new_keypair, read_signature, verify_signature


def _rehash(bundle) -> None:
    """What an attacker who can write the bundle does after editing a file: rewrite SHA256SUMS."""
    lines = []
    for line in (bundle / SUMS_FILE).read_text().splitlines():
        _, _, name = line.partition("  ")
        lines.append(f"{sha256_file(bundle / name)}  {name}")
    (bundle / SUMS_FILE).write_text("\n".join(lines) + "\n")


def _flip_one_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_signed_bundle_loads_and_says_who_signed(signed_lr, keyring):
    predictor = load_predictor(signed_lr, trusted_keys=keyring["trusted"])
    assert predictor.name == "fraud-lr"
    sig = verify_signature(signed_lr, TrustedKeys.from_dir(keyring["trusted"]))
    assert sig.signer == "alice" and sig.trusted_name == "alice" and len(sig.key_id) == 16
    assert SIGNATURE_FILE not in (signed_lr / SUMS_FILE).read_text()


def test_unsigned_bundle_is_refused(lr_bundle, keyring):
    with pytest.raises(BundleError, match="is not signed and trusted keys are configured"):
        load_predictor(lr_bundle, trusted_keys=keyring["trusted"])
    load_predictor(lr_bundle)  # no trusted keys configured: hashes only, as before


def test_bundle_signed_by_an_untrusted_key_is_refused(lr_bundle, keyring, tmp_path):
    copy = shutil.copytree(lr_bundle, tmp_path / "b")
    sign_bundle(copy, keyring["mallory"])
    with pytest.raises(BundleError, match="signed by 'mallory' with key [0-9a-f]{16}, which is not in the trusted"):
        load_predictor(copy, trusted_keys=keyring["trusted"])


def test_one_byte_of_the_model_changed_under_a_valid_signature_is_refused(signed_lr, keyring):
    _flip_one_byte(signed_lr / "model.joblib")  # SIGNATURE.json untouched: still a valid signature
    with pytest.raises(BundleError, match="model.joblib does not match its sha256"):
        load_predictor(signed_lr, trusted_keys=keyring["trusted"])
    _rehash(signed_lr)  # the attacker also rewrites the sums: now the signature no longer matches
    with pytest.raises(BundleError, match="SHA256SUMS changed after the bundle was signed by 'alice'"):
        load_predictor(signed_lr, trusted_keys=keyring["trusted"])


def test_metadata_edited_after_signing_is_refused(signed_lr, keyring):
    meta = signed_lr / "metadata.json"
    doc = json.loads(meta.read_text())
    doc["metrics"]["roc_auc"] = 0.999
    meta.write_text(json.dumps(doc, indent=2) + "\n")
    with pytest.raises(BundleError, match="metadata.json does not match its sha256"):
        load_predictor(signed_lr, trusted_keys=keyring["trusted"])
    _rehash(signed_lr)
    with pytest.raises(BundleError, match="changed after the bundle was signed"):
        load_predictor(signed_lr, trusted_keys=keyring["trusted"])


def test_a_forged_signature_file_is_refused(signed_lr, keyring):
    """Rewrite SHA256SUMS, then fix up manifest_sha256 in SIGNATURE.json: the ed25519 check catches it."""
    import hashlib

    _flip_one_byte(signed_lr / "model.joblib")
    _rehash(signed_lr)
    sig_path = signed_lr / SIGNATURE_FILE
    doc = json.loads(sig_path.read_text())
    doc["manifest_sha256"] = hashlib.sha256((signed_lr / SUMS_FILE).read_bytes()).hexdigest()
    sig_path.write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="signature of 'alice' does not match the bundle"):
        load_predictor(signed_lr, trusted_keys=keyring["trusted"])
    sig_path.write_text("{not json")
    with pytest.raises(BundleError, match="SIGNATURE.json is not a shipml signature"):
        load_predictor(signed_lr, trusted_keys=keyring["trusted"])


def test_every_artifact_in_the_manifest_is_covered(lr_bundle, keyring, tmp_path):
    """A bundle with an extra hashed artifact (the monitoring reference profile): editing it is refused."""
    from shipml.bundle import write_bundle

    copy = shutil.copytree(lr_bundle, tmp_path / "b")
    write_bundle(copy, verify_bundle(copy), files={"reference.json": b'{"amount": [1, 2, 3]}\n'})
    sign_bundle(copy, keyring["bob"])
    verify_bundle(copy, trusted_keys=keyring["trusted"])
    (copy / "reference.json").write_text('{"amount": [9, 9, 9]}\n')
    _rehash(copy)
    with pytest.raises(BundleError, match="changed after the bundle was signed by 'bob'"):
        verify_bundle(copy, trusted_keys=keyring["trusted"])


def test_rewriting_a_bundle_voids_its_signature(signed_lr):
    from shipml.bundle import write_bundle

    write_bundle(signed_lr, verify_bundle(signed_lr))
    assert read_signature(signed_lr) is None


def test_rotation_two_trusted_keys_then_the_old_one_retired(lr_bundle, keyring, tmp_path):
    old = shutil.copytree(lr_bundle, tmp_path / "old")
    new = shutil.copytree(lr_bundle, tmp_path / "new")
    sign_bundle(old, keyring["alice"])
    sign_bundle(new, keyring["bob"])
    folder = shutil.copytree(keyring["trusted"], tmp_path / "trusted")
    for bundle in (old, new):  # both keys trusted during the rotation
        load_predictor(bundle, trusted_keys=folder)
    (folder / "alice.pub").unlink()  # rotation done: alice's key retired
    load_predictor(new, trusted_keys=folder)
    with pytest.raises(BundleError, match="signed by 'alice'.*not in the trusted keys folder"):
        load_predictor(old, trusted_keys=folder)


def test_the_environment_variable_turns_enforcement_on(lr_bundle, keyring, monkeypatch):
    monkeypatch.setenv("SHIPML_TRUSTED_KEYS", str(keyring["trusted"]))
    with pytest.raises(BundleError, match="not signed"):
        load_predictor(lr_bundle)


def test_a_trusted_folder_without_keys_is_a_clear_error(lr_bundle, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="holds no \\*.pub file"):
        load_predictor(lr_bundle, trusted_keys=tmp_path / "empty")
    with pytest.raises(BundleError, match="does not exist"):
        load_predictor(lr_bundle, trusted_keys=tmp_path / "nowhere")


def test_signing_a_tampered_bundle_is_refused(lr_bundle, keyring, tmp_path):
    copy = shutil.copytree(lr_bundle, tmp_path / "b")
    _flip_one_byte(copy / "model.joblib")
    with pytest.raises(BundleError, match="does not match its sha256"):
        sign_bundle(copy, keyring["alice"])
    assert not (copy / SIGNATURE_FILE).exists()


def test_private_key_is_owner_only_and_names_are_checked(tmp_path):
    pair = new_keypair("ci-2026", tmp_path)
    assert pair.private_path.stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in pair.private_path.read_bytes() and b"PUBLIC KEY" in pair.public_path.read_bytes()
    with pytest.raises(ShipmlError, match="exists"):
        new_keypair("ci-2026", tmp_path)
    with pytest.raises(ShipmlError, match="must be letters"):
        new_keypair("../evil", tmp_path)
