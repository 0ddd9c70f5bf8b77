"""Fixtures of the pipeline tests: a pipeline config in a scratch workdir; skips when the engine (or its
local base image) is missing, with the reason."""

from __future__ import annotations

import pytest

# Unique tags on the shared engine (never shipml-serving:0.1.0/0.2.0); removed after the session.
TAG_PREFIX = "dev-pipeline-test-"


def docker_reason() -> str | None:
    from shipml.containers.engine import engine_available

    answer = engine_available()
    if not answer:
        return answer.reason
    from shipml.pipeline.image import image_id

    if image_id("python:3.11-slim") is None:
        return "the local base image python:3.11-slim is missing (`shipml docker base-image`)"
    return None


@pytest.fixture(scope="session")
def docker_ready():
    reason = docker_reason()
    if reason:
        pytest.skip(reason)
    yield
    from shipml.containers import remove_tags

    remove_tags("shipml-serving", TAG_PREFIX)  # only the tags these tests made; shared layers stay


@pytest.fixture(scope="session")
def small():
    """small(workdir, **more): fast settings (training ~1 s; the canary sends a few hundred requests)."""
    return _small


def _small(workdir, **more) -> dict:
    return {"workdir": str(workdir), "tag_prefix": TAG_PREFIX, "cluster": "none", "rows": 20_000,
            "holdout_rows": 20_000, "smoke_requests": 10, "canary_requests": 400,
            "canary_bounds": {"min_requests": 60, "max_score_shift": 0.3, "latency_slack_ms": 50.0}, **more}
