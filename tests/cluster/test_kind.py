"""What only real nodes can show: the image loaded into kind and containers answering through
the NodePort. Skipped with the reason when kind (or Docker, or the cluster) is absent."""

from __future__ import annotations

import subprocess
import time

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


def test_latest_tag_ends_in_image_pull_backoff_even_after_kind_load(served):
    """The seed's pitfall on real nodes: `:latest` implies imagePullPolicy Always (kind#328)."""
    subprocess.run(["docker", "tag", V1, "shipml-serving:latest"], check=True)
    kind.load_image("shipml-serving:latest")
    demo = served.with_namespace("shipml-latest-demo")
    workflow.apply_manifests(served.with_namespace(None), [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shipml-latest-demo"}}])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "latest"},
           "spec": {"containers": [{"name": "serving", "image": "shipml-serving:latest"}]}}
    workflow.apply_manifests(demo, [pod])
    reasons: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not reasons & {"ErrImagePull", "ImagePullBackOff"}:
        statuses = demo.get_json("pod/latest").get("status", {}).get("containerStatuses", [])
        reasons = {s.get("state", {}).get("waiting", {}).get("reason", "") for s in statuses}
        time.sleep(2)
    served.run("delete", "namespace", "shipml-latest-demo", "--wait=false", namespaced=False)
    assert reasons & {"ErrImagePull", "ImagePullBackOff"}, reasons
