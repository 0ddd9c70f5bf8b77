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
def image_inputs(lr_bundle, hgb_bundle) -> Iterator[dict[str, Path]]:
    """A model repository and an edge bundle under artifacts/ (inside the build context)."""
    import shutil

    from shipml.edge.export import export_bundle

    scratch = REPO_ROOT / "artifacts" / f"test-images-{SESSION['io.shipml.test-session']}"
    repository = scratch / "model-repository"
    shutil.copytree(lr_bundle, repository / "fraud-lr" / "1")
    shutil.copytree(hgb_bundle, repository / "fraud-hgb" / "1")
    edge = export_bundle(lr_bundle, scratch / "edge-bundle", parity_rows=2_000).path
    try:
        yield {"repository": repository, "edge": Path(edge), "scratch": scratch}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _build_kit_image(base_image: str, dockerfile: str, tag: str, buildargs: dict[str, str]):
    from shipml.containers import build_image

    return build_image(
        REPO_ROOT,
        tag,
        dockerfile=f"deploy/docker/{dockerfile}",
        buildargs={"BASE_IMAGE": base_image, **buildargs},
        progress="none",
    )


@pytest.fixture(scope="session")
def serving_image(base_image, image_inputs) -> Iterator[str]:
    """deploy/docker/Dockerfile built with a test model repository; removed afterwards."""
    from shipml.containers import remove_image

    tag = f"shipml-test-serving-{SESSION['io.shipml.test-session']}:1"
    models = image_inputs["repository"].relative_to(REPO_ROOT)
    try:
        _build_kit_image(base_image, "Dockerfile", tag, {"MODELS": str(models)})
        yield tag
    finally:
        remove_image(tag)


@pytest.fixture(scope="session")
def edge_image(base_image, image_inputs) -> Iterator[str]:
    """deploy/docker/edge.Dockerfile built with a test edge bundle; removed afterwards."""
    from shipml.containers import remove_image

    tag = f"shipml-test-edge-{SESSION['io.shipml.test-session']}:1"
    bundle = image_inputs["edge"].relative_to(REPO_ROOT)
    try:
        _build_kit_image(base_image, "edge.Dockerfile", tag, {"EDGE_BUNDLE": str(bundle)})
        yield tag
    finally:
        remove_image(tag)
