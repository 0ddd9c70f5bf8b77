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
