"""Shared fixtures: tiny data, trained bundles (made once per session), free ports.

Jupyter and IPython directories point into a temporary folder so tests never write to $HOME.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_HOME = Path(tempfile.mkdtemp(prefix="shipml-test-home-"))
for _var, _sub in [("JUPYTER_CONFIG_DIR", "jupyter-config"), ("JUPYTER_DATA_DIR", "jupyter-data"),
                   ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"), ("IPYTHONDIR", "ipython"),
                   ("MPLCONFIGDIR", "matplotlib")]:
    os.environ.setdefault(_var, str(_HOME / _sub))
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_df():
    """5,000 seeded transactions: enough for both classes, fast to train on."""
    from shipml.data import make_transactions

    return make_transactions(5_000, seed=7)


@pytest.fixture(scope="session")
def train_df():
    from shipml.data import make_transactions

    return make_transactions(40_000, seed=1)


def _bundle(tmp_path_factory, train_df, kind: str) -> Path:
    from shipml.models import save_bundle, train

    out = tmp_path_factory.mktemp(f"bundle-{kind}") / f"fraud-{kind}"
    return save_bundle(train(train_df, kind, seed=0), out)


@pytest.fixture(scope="session")
def lr_bundle(tmp_path_factory, train_df) -> Path:
    """A saved logistic-regression bundle (read-only: copy it before changing it)."""
    return _bundle(tmp_path_factory, train_df, "lr")


@pytest.fixture(scope="session")
def hgb_bundle(tmp_path_factory, train_df) -> Path:
    """A saved gradient-boosting bundle (read-only: copy it before changing it)."""
    return _bundle(tmp_path_factory, train_df, "hgb")


@pytest.fixture
def free_port() -> int:
    """A loopback port nobody listens on right now, for servers that only take a number.

    Prefer port 0 (or :func:`shipml.net.bound_socket`) where the server allows it: no race at all.
    """
    from shipml.net import free_port as pick

    return pick()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test: bound by us, never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="session")
def fake_cluster(tmp_path_factory):
    """A real control plane with 3 kwok fake nodes, in its own state folder; always torn down."""
    from shipml.cluster.controlplane import build_controlplane, down, missing_binaries, unavailable_reason, up

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    if missing_binaries():  # normally done by .ci/setup.d/30-controlplane.sh
        build_controlplane()
    state = tmp_path_factory.mktemp("fake-cluster") / "state"
    cluster = up(3, state_dir=state, build=False)
    yield cluster
    down(state_dir=state)
