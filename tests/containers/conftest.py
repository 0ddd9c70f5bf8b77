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
def base_image(client) -> str:
    """The python:3.11-slim(-compatible) base image, built locally if the engine lacks it."""
    try:
        client.images.get(BASE_IMAGE)
    except Exception:
        ca = HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None
        try:
            build_base_image(BASE_IMAGE, ca_bundle=ca, bars=False)
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
