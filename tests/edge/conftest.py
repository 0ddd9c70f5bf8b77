"""Edge fixtures: ONNX edge bundles exported once per session from the shared scikit-learn bundles."""

from __future__ import annotations

from pathlib import Path

import pytest

PARITY_ROWS = 5_000


@pytest.fixture(scope="session")
def edge_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("edge")


@pytest.fixture(scope="session")
def lr_edge(lr_bundle, edge_dir) -> Path:
    from shipml.edge.export import export_bundle

    return export_bundle(lr_bundle, edge_dir / "lr-edge", parity_rows=PARITY_ROWS).path


@pytest.fixture(scope="session")
def hgb_edge(hgb_bundle, edge_dir) -> Path:
    from shipml.edge.export import export_bundle

    return export_bundle(hgb_bundle, edge_dir / "hgb-edge", parity_rows=PARITY_ROWS).path


@pytest.fixture(scope="session")
def mlp_bundle(tmp_path_factory, train_df) -> Path:
    from shipml.models import save_bundle, train

    return save_bundle(train(train_df, "mlp", seed=0), tmp_path_factory.mktemp("bundle-mlp") / "fraud-mlp")


@pytest.fixture(scope="session")
def heldout():
    """Rows no fixture model was trained on (the shared bundles use seed 1)."""
    from shipml.data import make_transactions

    return make_transactions(4_000, seed=321)


@pytest.fixture(scope="session")
def edge_csv(heldout, edge_dir) -> Path:
    path = edge_dir / "few.csv"
    heldout.head(20).to_csv(path, index=False)
    return path
