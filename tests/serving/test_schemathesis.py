"""schemathesis's CLI with ``--checks all`` against a live server: the published OpenAPI schema and the server agree.

It generates requests from the app's own ``/openapi.json`` (valid and invalid bodies, odd parameters, methods
the schema does not list) and checks every answer: no 5xx, statuses and bodies as documented, schema-valid
data accepted, invalid data refused, ``Allow`` on 405 and OPTIONS. Bounded in time: one ONNX model (so the
TF Serving and v2 routes are documented once), a few examples per operation, a fixed seed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from shipml.serving import BackgroundServer

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory, onnx_bundle):
    root = tmp_path_factory.mktemp("st-repo")
    shutil.copytree(onnx_bundle, root / "fraud-onnx" / "1")
    with BackgroundServer(root, env={"SHIPML_ACCESS_LOG": "off"}) as server:
        yield server


def test_schemathesis_cli_finds_no_failure_with_every_check(onnx_server, tmp_path):
    cli = Path(sys.executable).with_name("schemathesis")
    cmd = [str(cli), "--config-file", str(CONFIG), "run", f"{onnx_server.url}/openapi.json", "--checks", "all",
           "--max-examples", "6", "--seed", "13", "--workers", "1", "--phases", "examples,coverage,fuzzing",
           "--request-timeout", "20", "--output-truncate", "true", "--warnings", "off"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert "failed" not in out.lower().split("summary")[-1], out[-3000:]
    assert "Traceback" not in onnx_server.logs()
