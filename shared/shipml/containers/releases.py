"""The serving image's releases, each a *different* model: what `shipml docker build` makes.

- `shipml-serving:0.1.0`: fraud-lr and fraud-hgb version 1, trained on 20,000 seeded rows;
- `shipml-serving:0.2.0`: version 2 of the same models, retrained on 60,000 rows (another seed).

The rolling update of notebook 04 goes from one to the other, and every `/predict` answer names
the model version that served it ("version": 1 or 2), so the switch can be seen request by request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipml.errors import ShipmlError

IMAGE = "shipml-serving"


@dataclass(frozen=True)
class Release:
    """One image tag and the model bundles baked into it."""

    tag: str
    model_version: int
    rows: int
    seed: int
    artifacts: str  # folder under the build context that holds this release's repositories

    @property
    def image(self) -> str:
        return f"{IMAGE}:{self.tag}"


RELEASES = {
    "0.1.0": Release("0.1.0", 1, 20_000, 0, "artifacts"),
    "0.2.0": Release("0.2.0", 2, 60_000, 1, "artifacts/release-0.2.0"),
}


@dataclass
class BuiltRelease:
    release: Release
    seconds: float
    cached_steps: int
    steps: int


def releases(tags: Sequence[str] | None = None) -> list[Release]:
    """The releases named by `tags` (all when None), or a ShipmlError naming the known ones."""
    unknown = sorted(set(tags or ()) - set(RELEASES))
    if unknown:
        raise ShipmlError(f"unknown release(s) {', '.join(unknown)}; known: {', '.join(RELEASES)}")
    return [RELEASES[tag] for tag in (tags or RELEASES)]


def build_releases(tags: Sequence[str] | None = None, *, context: str | Path | None = None,
                   base_image: str = "python:3.11-slim", progress: str = "bar",
                   echo: Callable[[str], None] = print) -> list[BuiltRelease]:
    """Train (or reuse) each release's bundles, then `docker build --target serving` its image."""
    from shipml.containers.build import build_image
    from shipml.containers.models import prepare_image_models
    from shipml.paths import repo_root

    context = Path(context or repo_root())
    built = []
    for release in releases(tags):
        models = prepare_image_models(context / release.artifacts, rows=release.rows, seed=release.seed,
                                      version=release.model_version, echo=echo)
        args = {**models.buildargs(context), "BASE_IMAGE": base_image}
        echo(f"$ docker build -f deploy/docker/Dockerfile --target serving --build-arg "
             f"MODELS={args['MODELS']} -t {release.image} .")
        result = build_image(context, release.image, dockerfile="deploy/docker/Dockerfile",
                             target="serving", buildargs=args, progress=progress,  # type: ignore[arg-type]
                             labels={"org.opencontainers.image.version": release.tag,
                                     "io.shipml.model-version": str(release.model_version)})
        echo(f"{release.image}: model version {release.model_version} ({release.rows:,} rows), "
             f"built in {result.seconds:.1f} s ({result.cached_steps}/{result.steps} steps cached)")
        built.append(BuiltRelease(release, result.seconds, result.cached_steps, result.steps))
    return built
