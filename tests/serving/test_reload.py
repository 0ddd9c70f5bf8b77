"""Hot reload: a version dropped into the repository is served without a restart; removed ones go."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest
from serving_data import RECORD
from shipml.serving import BackgroundServer

pytestmark = pytest.mark.slow


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_new_version_is_picked_up_and_becomes_the_default(tmp_path, lr_bundle, hgb_bundle):
    repo = tmp_path / "models"
    shutil.copytree(lr_bundle, repo / "fraud" / "1")
    with BackgroundServer(repo, env={"SHIPML_POLL_SECONDS": "0.3"}) as s, httpx.Client(base_url=s.url) as c:
        first = c.post("/predict", json=RECORD).json()
        assert (first["model"], first["version"]) == ("fraud", 1)
        # Copy under a hidden name, then rename: the server never sees half a bundle.
        shutil.copytree(hgb_bundle, repo / "fraud" / ".incoming")
        (repo / "fraud" / ".incoming").rename(repo / "fraud" / "2")
        assert _wait_for(lambda: c.get("/v1/models/fraud").json()["model_version_status"].__len__() == 2)
        latest = c.post("/predict", json=RECORD).json()
        assert latest["version"] == 2 and latest["probabilities"] != first["probabilities"]
        pinned = c.post("/predict", params={"version": 1}, json=RECORD).json()
        assert pinned["version"] == 1 and pinned["probabilities"] == first["probabilities"]
        assert 'model_loaded{backend="sklearn",model="fraud",version="2"} 1.0' in c.get("/metrics").text
        shutil.rmtree(repo / "fraud" / "2")
        assert _wait_for(lambda: c.post("/predict", json=RECORD).json()["version"] == 1)
        assert c.post("/predict", params={"version": 2}, json=RECORD).status_code == 404
        assert 'model_loaded{backend="sklearn",model="fraud",version="2"}' not in c.get("/metrics").text


def test_a_broken_version_is_reported_and_the_others_keep_serving(tmp_path, lr_bundle):
    repo = tmp_path / "models"
    shutil.copytree(lr_bundle, repo / "fraud" / "1")
    with BackgroundServer(repo, env={"SHIPML_POLL_SECONDS": "0.3"}) as s, httpx.Client(base_url=s.url) as c:
        broken = repo / "fraud" / "2"
        shutil.copytree(lr_bundle, broken)
        blob = bytearray((broken / "model.joblib").read_bytes())
        blob[50] ^= 1
        (broken / "model.joblib").write_bytes(bytes(blob))
        assert _wait_for(lambda: "sha256" in s.logs())
        r = c.post("/predict", json=RECORD)
        assert r.status_code == 200 and r.json()["version"] == 1
        assert c.get("/v2/health/ready").status_code == 200


def _wrong_object_bundle(src, dst):
    """A bundle whose model file is a valid pickle of the wrong object, with consistent hashes."""
    import joblib
    from shipml.bundle import read_metadata, write_bundle

    shutil.copytree(src, dst)
    metadata = read_metadata(dst)
    joblib.dump({"not": "a model"}, dst / metadata.model_file)
    write_bundle(dst, metadata)
    return dst


def test_a_version_that_cannot_score_is_never_served_and_the_previous_default_keeps_serving(tmp_path, lr_bundle):
    repo = tmp_path / "models"
    shutil.copytree(lr_bundle, repo / "fraud" / "1")
    with BackgroundServer(repo, env={"SHIPML_POLL_SECONDS": "0.3"}) as s, httpx.Client(base_url=s.url) as c:
        incoming = _wrong_object_bundle(lr_bundle, repo / "fraud" / ".incoming")
        incoming.rename(repo / "fraud" / "2")
        assert _wait_for(lambda: "cannot score its schema's example" in s.logs())
        r = c.post("/predict", json=RECORD)
        assert r.status_code == 200 and r.json()["version"] == 1
        assert c.get("/v1/models/fraud").json()["model_version_status"][0]["version"] == "1"
        assert c.get("/v2/models/fraud/versions/2/ready").status_code == 404
        assert "failed to load" in c.get("/v2/models/fraud/versions/2/ready").json()["error"]
        assert c.get("/v2/health/ready").status_code == 200  # every model has a served version
        # The operator fixes it in place with cp -a: the new files are seen and the version loads.
        shutil.rmtree(repo / "fraud" / "2")
        shutil.copytree(lr_bundle, repo / "fraud" / "2", dirs_exist_ok=True)
        assert _wait_for(lambda: c.post("/predict", json=RECORD).json()["version"] == 2)


def test_a_version_copied_in_place_is_retried_until_complete(tmp_path, lr_bundle):
    """cp without the rename: the server sees a half-written folder, fails, and tries again as files change."""
    repo = tmp_path / "models"
    shutil.copytree(lr_bundle, repo / "fraud" / "1")
    with BackgroundServer(repo, env={"SHIPML_POLL_SECONDS": "0.2"}) as s, httpx.Client(base_url=s.url) as c:
        target = repo / "fraud" / "2"
        target.mkdir()
        files = sorted(p for p in lr_bundle.iterdir() if p.is_file())
        for f in files:  # one file at a time, slower than the poll: every state is seen
            shutil.copy2(f, target / f.name)
            time.sleep(0.5)
        assert _wait_for(lambda: c.post("/predict", json=RECORD).json()["version"] == 2)
        assert "model version not loaded" in s.logs()  # it did see the half copy, and retried


def test_readiness_means_every_model_is_ready(tmp_path, lr_bundle):
    repo = tmp_path / "models"
    shutil.copytree(lr_bundle, repo / "good" / "1")
    _wrong_object_bundle(lr_bundle, repo / "broken" / "1")
    with BackgroundServer(repo, env={"SHIPML_POLL_SECONDS": "0.3"}, wait_ready=False) as s, \
            httpx.Client(base_url=s.url) as c:
        assert _wait_for(lambda: c.post("/predict", params={"model": "good"}, json=RECORD).status_code == 200)
        assert "model version not loaded" in s.logs()
        r = c.get("/v2/health/ready")
        assert r.status_code == 503 and r.json() == {"ready": False}
        shutil.rmtree(repo / "broken")  # the operator removes it: its failure is forgotten
        assert _wait_for(lambda: c.get("/v2/health/ready").status_code == 200)


def test_two_workers_mark_unloaded_versions_and_leave_no_metrics_folder(tmp_path, lr_bundle, hgb_bundle):
    import glob

    repo = tmp_path / "models"
    shutil.copytree(lr_bundle, repo / "fraud" / "1")
    shutil.copytree(hgb_bundle, repo / "fraud" / "2")
    before = set(glob.glob("/tmp/shipml-metrics-*"))
    server = BackgroundServer(repo, workers=2, env={"SHIPML_POLL_SECONDS": "0.3"})
    with server as s, httpx.Client(base_url=s.url) as c:
        made = set(glob.glob("/tmp/shipml-metrics-*")) - before
        assert len(made) == 1
        assert 'shipml_model_loaded{backend="sklearn",model="fraud",version="2"} 1.0' in c.get("/metrics").text
        shutil.rmtree(repo / "fraud" / "2")

        def unloaded():
            text = c.get("/metrics").text
            return ('model="fraud",version="2"} 0.0' in text or 'version="2"}' not in text.split(
                "shipml_model_loaded", 1)[-1]) and 'model="fraud",version="1"} 1.0' in text

        assert _wait_for(unloaded)
    assert not (made & set(glob.glob("/tmp/shipml-metrics-*"))), "the metrics folder is left behind"
