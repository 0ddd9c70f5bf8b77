"""Fixtures of the security tests: key pairs and signed copies of the shared bundles."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def keyring(tmp_path_factory) -> dict[str, Path]:
    """Three key pairs: ``alice`` and ``bob`` are trusted (``trusted/``), ``mallory`` is not."""
    from shipml.signing import new_keypair

    root = tmp_path_factory.mktemp("keys")
    trusted = root / "trusted"
    trusted.mkdir()
    out: dict[str, Path] = {"trusted": trusted}
    for name in ("alice", "bob", "mallory"):
        pair = new_keypair(name, root / "private")
        out[name] = pair.private_path
        if name != "mallory":
            shutil.copy(pair.public_path, trusted / pair.public_path.name)
    return out


def _signed_copy(bundle: Path, to: Path, key: Path) -> Path:
    """A copy of ``bundle`` at ``to``, signed with ``key``: the tests tamper with copies, never the originals."""
    from shipml.bundle import sign_bundle

    copy = Path(shutil.copytree(bundle, to))
    sign_bundle(copy, key)
    return copy


@pytest.fixture
def signed_lr(lr_bundle, keyring, tmp_path) -> Path:
    """A copy of the lr bundle signed by alice (a trusted key); free to tamper with."""
    return _signed_copy(lr_bundle, tmp_path / "fraud-lr", keyring["alice"])


@pytest.fixture(scope="session")
def edge_lr(tmp_path_factory, lr_bundle) -> Path:
    """The lr bundle exported to ONNX (an edge bundle), unsigned (read-only)."""
    from shipml.edge.export import export_bundle

    out = tmp_path_factory.mktemp("edge") / "fraud-lr-edge"
    export_bundle(lr_bundle, out, parity_rows=2000)
    return out


@pytest.fixture
def signed_edge(edge_lr, keyring, tmp_path) -> Path:
    """A copy of the edge bundle signed by bob (trusted)."""
    return _signed_copy(edge_lr, tmp_path / "edge-signed", keyring["bob"])
