"""Fixtures for the container tests: a real engine, the base image, and a leftover check.

Tests marked ``docker`` skip only when no Docker engine answers (the reason says why and where).
If an engine answers but the base image is missing, it is built (as `.ci/setup.d/20-docker.sh`
does); if that cannot work here, the tests fail with the message that says what to do.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from shipml.containers import (
    build_base_image,
    docker_client,
    engine_available,
    leftover_containers,
    remove_container,
)
from shipml.errors import ShipmlError

BASE_IMAGE = os.environ.get("SHIPML_BASE_IMAGE", "python:3.11-slim")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Every container a test starts carries this label, so the leftover check sees only this session.
SESSION = {"io.shipml.test-session": uuid.uuid4().hex[:12]}


@pytest.fixture(scope="session")
def engine():
    """The engine's status; skips the test (with the reason) when none answers."""
    status = engine_available()
    if not status:
        pytest.skip(status.reason)
    return status


@pytest.fixture(scope="session")
def client(engine):
    client = docker_client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def rootfs_cache(tmp_path_factory) -> Path:
    """The user's base-image cache when it holds a root filesystem (read only), else a temp folder:
    tests never write to the home folder."""
    from shipml.containers import base_image as base

    cache = base.default_cache_dir()
    if base.rootfs_tarball(cache, base.DEFAULT_SUITE, base.DEFAULT_MIRROR).is_file():
        return cache
    return tmp_path_factory.mktemp("base-image-cache")


@pytest.fixture(scope="session")
def base_image(client, rootfs_cache) -> str:
    """The python:3.11-slim(-compatible) base image, built locally if the engine lacks it."""
    try:
        client.images.get(BASE_IMAGE)
    except Exception:
        ca = HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None
        try:
            build_base_image(BASE_IMAGE, ca_bundle=ca, cache_dir=rootfs_cache, bars=False)
        except ShipmlError as exc:
            pytest.fail(
                f"the engine has no {BASE_IMAGE} and it cannot be built here ({exc}); "
                f"run `sudo shipml docker base-image` or `docker pull {BASE_IMAGE}`"
            )
    return BASE_IMAGE


@pytest.fixture
def session_labels() -> dict[str, str]:
    """Labels for containers started by a test; the autouse check below looks for them."""
    return dict(SESSION)


@pytest.fixture(autouse=True)
def nothing_left_running(request) -> Iterator[None]:
    """After every docker test: no container of this session may remain (cleaned up, then failed)."""
    yield
    if "docker" not in request.keywords or not engine_available():
        return
    left = leftover_containers(SESSION)
    for container in left:
        remove_container(container)
    assert not left, f"containers left behind: {[c.name for c in left]}"


@pytest.fixture
def unique_tag() -> str:
    """An image tag nobody else uses (other engineers and tests share the engine)."""
    return f"shipml-test-{uuid.uuid4().hex[:10]}:1"


# ---- the kit's images, built from the repository root as a student would -------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def image_inputs() -> Iterator[dict[str, Path]]:
    """The images' model repositories, made by ``shipml.containers.prepare_image_models`` under
    artifacts/ (inside the build context): scikit-learn bundles, their ONNX exports, an edge bundle."""
    import shutil

    from shipml.containers import prepare_image_models

    scratch = REPO_ROOT / "artifacts" / f"test-images-{SESSION['io.shipml.test-session']}"
    try:
        made = prepare_image_models(scratch, rows=5_000, seed=3, echo=lambda _: None)
        yield {
            "repository": made.sklearn,
            "onnx": made.onnx,
            "edge": made.edge,
            "scratch": scratch,
            "buildargs": made.buildargs(REPO_ROOT),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _build_kit_image(base_image: str, dockerfile: str, tag: str, buildargs: dict[str, str], target=None):
    from shipml.containers import build_image

    return build_image(
        REPO_ROOT,
        tag,
        dockerfile=f"deploy/docker/{dockerfile}",
        buildargs={"BASE_IMAGE": base_image, **buildargs},
        target=target,
        progress="none",
    )


def _session_image(base_image: str, image_inputs, name: str, dockerfile: str, target=None) -> Iterator[str]:
    """Build one of the kit's images once per session (layers come from the cache); remove it after."""
    from shipml.containers import remove_image

    tag = f"shipml-test-{name}-{SESSION['io.shipml.test-session']}:1"
    try:
        _build_kit_image(base_image, dockerfile, tag, image_inputs["buildargs"], target)
        yield tag
    finally:
        remove_image(tag)


@pytest.fixture(scope="session")
def serving_image(base_image, image_inputs) -> Iterator[str]:
    """The default serving target (ONNX bundles, no scikit-learn) with the test repository."""
    yield from _session_image(base_image, image_inputs, "serving", "Dockerfile", "serving")


@pytest.fixture(scope="session")
def serving_sklearn_image(base_image, image_inputs) -> Iterator[str]:
    """``--target serving-sklearn``: scikit-learn bundles."""
    yield from _session_image(base_image, image_inputs, "serving-sklearn", "Dockerfile", "serving-sklearn")


@pytest.fixture(scope="session")
def batch_image(base_image, image_inputs) -> Iterator[str]:
    """``--target batch``: ``shipml batch score`` with scikit-learn, pandas and pyarrow."""
    yield from _session_image(base_image, image_inputs, "batch", "Dockerfile", "batch")


@pytest.fixture(scope="session")
def edge_image(base_image, image_inputs) -> Iterator[str]:
    """deploy/docker/edge.Dockerfile built with the test edge bundle."""
    yield from _session_image(base_image, image_inputs, "edge", "edge.Dockerfile")
