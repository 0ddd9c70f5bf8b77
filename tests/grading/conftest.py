"""Fixtures for grading tests: the lab00 layout, a tiny hand-made notebook runner."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def lab00():
    from shipml.grading import submission

    return submission.layout("lab00")


@pytest.fixture
def docker_engine():
    """Skip (with the engine's own reason) when no Docker engine answers."""
    from shipml.containers.engine import engine_available

    status = engine_available()
    if not status:
        pytest.skip(status.reason)
    return status
