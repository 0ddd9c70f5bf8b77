"""``shipml serve``: a clear error for a wrong folder; several workers share one set of metrics."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest
from serving_data import RECORD
from shipml.serving import BackgroundServer


def test_missing_repository_is_one_line_and_exit_1(tmp_path):
    r = subprocess.run([sys.executable, "-m", "shipml", "serve", "--models", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("shipml: error:") and "no such model repository" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_two_workers_serve_and_add_up_their_metrics(model_repo):
    with BackgroundServer(model_repo, workers=2, env={"SHIPML_DEFAULT_MODEL": "fraud-onnx"}) as s:
        with httpx.Client(base_url=s.url) as c:
            # each worker loads its models in its own lifespan: wait until every worker says ready
            deadline, streak = time.monotonic() + 60, 0
            while streak < 20 and time.monotonic() < deadline:
                streak = streak + 1 if c.get("/v2/health/ready").status_code == 200 else 0
            n = 60
            for _ in range(n):
                assert c.post("/predict", json=RECORD).status_code == 200
            text = c.get("/metrics").text
        import psutil

        assert len(psutil.Process(s.pid).children()) >= 2, "expected two worker processes"
    total = sum(float(m) for m in re.findall(
        r'^shipml_requests_total\{method="POST",route="/predict",status="200"\} (\S+)$', text, re.M))
    assert total == n
