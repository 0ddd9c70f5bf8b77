"""Fixtures of the serving tests: a model repository, and real servers on free loopback ports.

Servers run as ``python -m shipml serve`` child processes (:class:`shipml.serving.BackgroundServer`),
always stopped when the fixture ends, even when a test fails.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from serving_data import RECORD
from shipml.serving import BackgroundServer


def copy_bundle(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(src, dst))


@pytest.fixture(scope="session")
def onnx_bundle(tmp_path_factory, lr_bundle) -> Path:
    """The lr bundle exported to ONNX by the edge part (``shipml edge export``)."""
    from shipml.edge.export import export_bundle

    out = tmp_path_factory.mktemp("onnx") / "fraud-onnx"
    export_bundle(lr_bundle, out, parity_rows=2000, name="fraud-onnx")
    return out


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory, lr_bundle, hgb_bundle, onnx_bundle) -> Path:
    """``fraud-lr/1``, ``fraud-hgb/1`` (scikit-learn) and ``fraud-onnx/1`` (ONNX): read-only."""
    root = tmp_path_factory.mktemp("repo")
    copy_bundle(lr_bundle, root / "fraud-lr" / "1")
    copy_bundle(hgb_bundle, root / "fraud-hgb" / "1")
    copy_bundle(onnx_bundle, root / "fraud-onnx" / "1")
    return root


@pytest.fixture(scope="module")
def server(model_repo):
    """One server for a test module: default model fraud-lr, no API key."""
    with BackgroundServer(model_repo, env={"SHIPML_DEFAULT_MODEL": "fraud-lr", "SHIPML_ACCESS_LOG": "all"}) as s:
        yield s


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


@pytest.fixture
def record() -> dict:
    return dict(RECORD)
