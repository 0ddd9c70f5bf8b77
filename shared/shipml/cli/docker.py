"""``shipml docker``: the Docker engine and the local base image (offline and proxy classrooms)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from shipml.errors import ShipmlError

# Repeated from shipml.containers.base_image (a test checks they agree): importing that module
# needs the Docker SDK, which images that only serve models do not install.
DEFAULT_TAG = "python:3.11-slim"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

app = typer.Typer(
    help="Docker: check the engine; build a python:3.11-slim-compatible base image without a "
    "registry (debootstrap + docker import), optionally trusting a proxy's CA bundle.",
    no_args_is_help=True,
)


@app.command("status")
def status() -> None:
    """Say whether a Docker engine answers, and which one (exit 1 when none does)."""
    from shipml.containers.engine import engine_available

    answer = engine_available()
    if not answer:
        raise ShipmlError(answer.reason)
    typer.echo(answer.reason)


@app.command("base-image")
def base_image_command(
    tag: str = typer.Option(DEFAULT_TAG, help="Tag of the image to build."),
    ca_bundle: Path | None = typer.Option(
        None,
        help="PEM CA bundle to trust inside the image (e.g. /etc/ssl/certs/ca-certificates.crt "
        "behind a TLS-intercepting proxy); sets PIP_CERT, REQUESTS_CA_BUNDLE, SSL_CERT_FILE.",
    ),
    suite: str = typer.Option(DEFAULT_SUITE, help="Debian suite (bookworm has 3.11)."),
    mirror: str = typer.Option(DEFAULT_MIRROR, help="Debian package mirror."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the image exists."),
    refresh: bool = typer.Option(
        False, "--refresh", help="Debootstrap again instead of using the cached root filesystem."
    ),
    cache_dir: Path | None = typer.Option(None, help="Where the root filesystem is cached (default ~/.cache/shipml)."),
) -> None:
    """Build a local python:3.11-slim-compatible base image from Debian packages (needs root)."""
    from shipml.containers.base_image import build_base_image

    result = build_base_image(
        tag,
        ca_bundle=ca_bundle,
        suite=suite,
        mirror=mirror,
        force=force,
        refresh_rootfs=refresh,
        cache_dir=cache_dir,
        echo=typer.echo,
        bars=sys.stderr.isatty(),  # bars in a terminal, one line per phase in CI logs
    )
    if result.built:
        source = "cached root filesystem" if result.rootfs_from_cache else "fresh debootstrap"
        typer.echo(f"{result.tag}: built in {result.seconds:.1f}s from a {source}")


@app.command("models")
def models_command(
    out: Path = typer.Option(Path("artifacts"), "--out", help="Folder under the build context (the repository root)."),
    rows: int = typer.Option(20_000, help="Seeded transactions to train on."),
    seed: int = typer.Option(0, help="Seed for the data and the models."),
    force: bool = typer.Option(False, "--force", help="Train and export again even if the bundles verify."),
) -> None:
    """Train lr/hgb and export them to ONNX: the model repositories the images bake in."""
    from shipml.containers.models import prepare_image_models

    made = prepare_image_models(out, rows=rows, seed=seed, force=force, echo=typer.echo)
    typer.echo(f"scikit-learn: {made.sklearn}  onnx: {made.onnx}  edge: {made.edge}")


@app.command("build")
def build_command(
    release: list[str] = typer.Option(None, "--release", help="0.1.0 and/or 0.2.0 (default: both)"),
    base_image: str = typer.Option(DEFAULT_TAG, help="Base image already in the engine (never pulled)."),
) -> None:
    """Build shipml-serving:0.1.0 (models v1) and 0.2.0 (models v2, retrained on more data)."""
    from shipml.containers.releases import build_releases

    build_releases(release or None, base_image=base_image,
                   progress="bar" if sys.stderr.isatty() else "none", echo=typer.echo)
