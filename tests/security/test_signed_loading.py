"""The server, the batch engine and the edge device all refuse what the trusted keys did not sign."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from shipml.bundle import sign_bundle
from shipml.edge import update
from shipml.edge.runtime import OnnxPredictor
from shipml.waiting import wait_until

pytestmark = pytest.mark.slow


def _cli(*args, cwd, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "shipml", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env={**os.environ, **(env or {})})


def test_server_serves_the_signed_version_and_refuses_the_unsigned_one(lr_bundle, hgb_bundle, keyring, tmp_path):
    from shipml.serving import BackgroundServer

    repo = tmp_path / "models"
    shutil.copytree(lr_bundle, repo / "fraud-lr" / "1")
    sign_bundle(repo / "fraud-lr" / "1", keyring["alice"])
    shutil.copytree(hgb_bundle, repo / "fraud-hgb" / "1")  # unsigned
    # wait_ready=False: server readiness means every model folder serves a version (the v2 spec), so a
    # repository holding a refused bundle stays not ready: the pod gets no traffic until it is removed.
    with BackgroundServer(repo, env={"SHIPML_TRUSTED_KEYS": str(keyring["trusted"])}, wait_ready=False) as s:
        wait_until(lambda: httpx.get(f"{s.url}/v2/models/fraud-lr/ready").status_code == 200, 60,
                   interval=0.2, what="the signed model", retry_on=(httpx.TransportError,))
        assert httpx.get(f"{s.url}/v2/models/fraud-hgb/ready").status_code == 404
        assert httpx.get(f"{s.url}/v2/health/ready").status_code == 503
        refusals = wait_until(lambda: [line for line in s.logs().splitlines() if "is not signed" in line], 10,
                              what="the refusal in the log")
        assert len(refusals) == 1 and "fraud-hgb" in refusals[0]


def test_batch_scoring_refuses_an_unsigned_bundle_in_one_line(lr_bundle, keyring, tmp_path):
    shutil.copytree(lr_bundle, tmp_path / "model")
    r = _cli("data", "make", "--rows", 200, "--out", "tx.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    env = {"SHIPML_TRUSTED_KEYS": str(keyring["trusted"])}
    r = _cli("batch", "score", "--model", "model", "--input", "tx.csv", "--output", "out.parquet", cwd=tmp_path,
             env=env)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "model: the bundle is not signed" in r.stderr and not (tmp_path / "out.parquet").exists()
    r = _cli("sign", "model", "--key", keyring["alice"], cwd=tmp_path)
    assert r.returncode == 0 and "signed by alice" in r.stdout, r.stderr
    r = _cli("batch", "score", "--model", "model", "--input", "tx.csv", "--output", "out.parquet", cwd=tmp_path,
             env=env)
    assert r.returncode == 0, r.stderr


def test_keys_sign_info_as_a_user_types_them(lr_bundle, tmp_path):
    shutil.copytree(lr_bundle, tmp_path / "b")
    r = _cli("keys", "new", "ada", "--out", "keys", cwd=tmp_path)
    assert r.returncode == 0 and "keys/ada.key" in r.stdout, r.stderr
    r = _cli("info", "b", cwd=tmp_path)
    assert "signature: none (unsigned bundle)" in r.stdout
    r = _cli("sign", "b", "--key", "keys/ada.key", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _cli("info", "b", cwd=tmp_path)
    assert r.returncode == 0 and "signature: signed by ada" in r.stdout and "intact" in r.stdout, r.stdout
    (tmp_path / "trusted").mkdir()
    shutil.copy(tmp_path / "keys" / "ada.pub", tmp_path / "trusted")
    r = _cli("info", "b", "--trusted-keys", "trusted", cwd=tmp_path)
    assert r.returncode == 0 and "valid, trusted as 'ada'" in r.stdout, r.stdout
    r = _cli("sign", "b", "--key", "keys/nobody.key", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("shipml: error: keys/nobody.key: no such private key")


def test_edge_device_refuses_unsigned_and_serves_signed(edge_lr, signed_edge, keyring):
    with pytest.raises(Exception, match="not signed"):
        OnnxPredictor.load(edge_lr, trusted_keys=keyring["trusted"])
    assert OnnxPredictor.load(signed_edge, trusted_keys=keyring["trusted"]).name == "fraud-lr"


def test_device_update_swaps_keeps_previous_and_refuses_tampering(edge_lr, signed_edge, keyring, tmp_path):
    from shipml.bundle import verify_bundle, write_bundle

    device = tmp_path / "device"
    first = update.apply_update(device, signed_edge, trusted_keys=keyring["trusted"])
    assert first.accepted and update.current_bundle(device).name.startswith("fraud-lr-v1-")
    v2 = shutil.copytree(edge_lr, tmp_path / "v2")
    meta = verify_bundle(v2)
    meta.version = 2
    write_bundle(v2, meta)
    sign_bundle(v2, keyring["bob"])
    second = update.apply_update(device, v2, trusted_keys=keyring["trusted"])
    assert second.accepted and second.previous == first.current and "fraud-lr-v2-" in second.current.name
    tampered = shutil.copytree(v2, tmp_path / "tampered")
    data = bytearray((tampered / "model.onnx").read_bytes())
    data[-10] ^= 0x01
    (tampered / "model.onnx").write_bytes(bytes(data))
    refused = update.apply_update(device, tampered, trusted_keys=keyring["trusted"])
    assert not refused.accepted and "model.onnx does not match its sha256" in refused.reason
    assert update.current_bundle(device) == second.current  # untouched
    log = (device / update.LOG_FILE).read_text()
    assert "model.onnx does not match its sha256" in log and '"accepted": false' in log
    assert update.rollback(device) == first.current and update.current_bundle(device) == first.current


def test_a_signed_update_that_fails_its_self_test_is_not_swapped_in(signed_edge, edge_lr, keyring, tmp_path):
    device = tmp_path / "device"
    assert update.apply_update(device, signed_edge, trusted_keys=keyring["trusted"]).accepted
    from shipml.bundle import write_bundle

    broken = shutil.copytree(edge_lr, tmp_path / "broken")
    (broken / "model.onnx").write_bytes(b"not an onnx graph")  # the author's own mistake, signed in good faith
    write_bundle(broken, _metadata_of(edge_lr, version=3))
    sign_bundle(broken, keyring["bob"])
    result = update.apply_update(device, broken, trusted_keys=keyring["trusted"])
    assert not result.accepted and result.reason.startswith("self-test failed, kept fraud-lr-v1-")
    assert update.current_bundle(device).name.startswith("fraud-lr-v1-")
    assert not any(p.name.startswith(".staging") for p in (device / "versions").iterdir())


def _metadata_of(bundle: Path, version: int):
    from shipml.bundle import verify_bundle

    m = verify_bundle(bundle)
    m.version = version
    return m


def test_device_command_refuses_a_tampered_update_with_the_reason(signed_edge, keyring, tmp_path):
    import os

    tampered = shutil.copytree(signed_edge, tmp_path / "t")
    (tampered / "metadata.json").write_text((tampered / "metadata.json").read_text().replace('"version": 1',
                                                                                             '"version": 7'))
    r = subprocess.run([sys.executable, "-m", "shipml.edge", "update", "device", "t", "--trusted-keys",
                        str(keyring["trusted"])], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env=dict(os.environ))
    assert r.returncode == 1 and "update refused" in r.stderr and "metadata.json does not match" in r.stderr
