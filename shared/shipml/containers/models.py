"""The models baked into the kit's images, prepared on the host before ``docker build``.

``deploy/docker/Dockerfile`` copies model repositories from the build context (``artifacts/``):

- ``model-repository/<name>/1``: scikit-learn bundles (``--target serving-sklearn`` and ``batch``);
- ``model-repository-onnx/<name>/1``: the same models exported to ONNX with a parity check (the
  default ``--target serving``: onnxruntime, no scikit-learn in the image);
- ``edge-bundle``: the logistic regression as an ONNX edge bundle (``edge.Dockerfile``).

Training is seeded and each step is skipped when its result already verifies, so preparing twice
changes nothing on disk and ``docker build`` keeps every layer cached.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipml.errors import BundleError, ShipmlError

SKLEARN_REPOSITORY = "model-repository"
ONNX_REPOSITORY = "model-repository-onnx"
EDGE_BUNDLE = "edge-bundle"
DEFAULT_KINDS = ("lr", "hgb")
DEFAULT_ROWS = 20_000
PARITY_ROWS = 2_000

Echo = Callable[[str], None]


@dataclass
class ImageModels:
    """Where the prepared bundles are, relative paths for ``MODELS``-style build arguments."""

    root: Path
    sklearn: Path
    onnx: Path
    edge: Path
    names: list[str]
    made: list[str] = field(default_factory=list)  # what this call created (empty: all reused)

    def buildargs(self, context: str | Path) -> dict[str, str]:
        """``MODELS``, ``SKLEARN_MODELS`` and ``EDGE_BUNDLE`` relative to the build context."""
        context = Path(context).resolve()
        return {
            "MODELS": str(self.onnx.resolve().relative_to(context)),
            "SKLEARN_MODELS": str(self.sklearn.resolve().relative_to(context)),
            "EDGE_BUNDLE": str(self.edge.resolve().relative_to(context)),
        }


def _verifies(bundle: Path) -> bool:
    from shipml.bundle import verify_bundle

    try:
        verify_bundle(bundle)
    except BundleError:
        return False
    return True


def _replace(path: Path) -> None:
    """Remove a half-written or broken bundle folder before making it again."""
    if path.exists():
        shutil.rmtree(path)


def prepare_image_models(
    root: str | Path,
    *,
    kinds: Sequence[str] = DEFAULT_KINDS,
    rows: int = DEFAULT_ROWS,
    seed: int = 0,
    force: bool = False,
    echo: Echo = print,
    version: int = 1,
) -> ImageModels:
    """Train ``kinds`` on ``rows`` seeded transactions and export them to ONNX under ``root``.

    Writes ``root/model-repository/fraud-<kind>/1`` (scikit-learn),
    ``root/model-repository-onnx/fraud-<kind>/1`` (ONNX, parity-checked against scikit-learn) and
    ``root/edge-bundle`` (the first kind, ONNX). Bundles that already verify are kept unless
    ``force``; that keeps the images' model layers cached between builds. ``version`` is the
    bundles' version folder (``shipml docker build`` makes version 2 for shipml-serving:0.2.0).
    """
    if rows < 100:
        raise ShipmlError(f"rows must be at least 100 to train on, got {rows}")
    if not kinds:
        raise ShipmlError("name at least one model kind (lr, hgb, mlp)")
    root = Path(root)
    result = ImageModels(
        root,
        root / SKLEARN_REPOSITORY,
        root / ONNX_REPOSITORY,
        root / EDGE_BUNDLE,
        [f"fraud-{kind}" for kind in kinds],
    )
    data = None
    for kind, name in zip(kinds, result.names, strict=True):
        source = result.sklearn / name / str(version)
        if force or not _verifies(source):
            if data is None:
                from shipml.data import make_transactions

                data = make_transactions(rows, seed=seed)
            from shipml.models import save_bundle, train

            _replace(source)
            echo(f"training {name} on {rows:,} seeded rows -> {source}")
            save_bundle(train(data, kind, seed=seed), source, name=name, version=version)
            result.made.append(str(source))
        exported = result.onnx / name / str(version)
        targets = [exported] + ([result.edge] if kind == kinds[0] else [])
        for target in targets:
            if force or str(source) in result.made or not _verifies(target):
                from shipml.edge.export import export_bundle

                _replace(target)
                target.parent.mkdir(parents=True, exist_ok=True)
                done = export_bundle(source, target, parity_rows=PARITY_ROWS)
                echo(f"exported {name} to ONNX -> {target} ({done.parity.summary()})")
                result.made.append(str(target))
    if not result.made:
        echo(f"model repositories under {root} are ready (nothing to do; --force remakes them)")
    return result
