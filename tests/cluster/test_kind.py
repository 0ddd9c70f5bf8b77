"""What only real nodes can show: the image loaded into kind and containers answering through
the NodePort. Skipped with the reason when kind (or Docker, or the cluster) is absent."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from shipml.cluster import kind, workflow

pytestmark = [pytest.mark.kind, pytest.mark.slow]

V1, V2 = "shipml-serving:0.1.0", "shipml-serving:0.2.0"


@pytest.fixture(scope="module")
def served(kind_cluster):
    for image in (V1, V2):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
            pytest.skip(f"image {image} is not built (the containers lesson builds it)")
    for image in (V1, V2):
        kind.load_image(image)
    workflow.apply_overlay(kind_cluster, "kind")
    workflow.wait_for_rollout(kind_cluster)
    yield kind_cluster
    workflow.delete_app(kind_cluster, "kind")


def test_service_answers_on_localhost_without_port_forward(served):
    url = workflow.service_url(served)
    assert httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200


def test_rolling_update_under_load_drops_no_request(served):
    url = workflow.service_url(served)
    step = workflow.rolling_update(served, V2, url=f"{url}/v2/health/ready")
    load = step.detail["load"]
    assert load.sent > 0 and load.failed == 0, str(load)
    workflow.rollback(served)
