"""Fixtures for the orchestration tests: a fake-node control plane for the session, the app
deployed on it once per module and restored after each test; for the tests that need real pods,
a kind cluster when one answers, else the kit's control plane with a real node on this machine (root: CI)."""

from __future__ import annotations

import subprocess

import pytest
from shipml.cluster import kind, reaper
from shipml.cluster.controlplane import down, up

# fake_cluster (the session's control plane) is in tests/conftest.py: tests/pipeline uses it too.


@pytest.fixture(scope="module")
def deployed(fake_cluster):
    """The kind overlay applied (server-side) and rolled out once per module; deleted after it."""
    from shipml.cluster import workflow

    kubectl = fake_cluster.kubectl("shipml")
    workflow.apply_overlay(kubectl, "kind")
    workflow.wait_for_rollout(kubectl, timeout=120)
    workflow.wait_for_hpa_floor(kubectl, timeout=120)  # no `replicas`: the HPA raises 1 pod to 3
    status = workflow.deployment_status(kubectl)
    yield kubectl, status["image"], status["desired"]
    workflow.delete_app(kubectl, "kind")


@pytest.fixture
def app(deployed):
    """The deployed app, as the module deployed it: a test that scales it or changes its image is
    undone afterwards, so every test starts from the same state whatever ran before it."""
    from shipml.cluster import workflow

    kubectl, image, replicas = deployed
    yield kubectl
    now = workflow.deployment_status(kubectl)
    if now["image"] != image:
        kubectl.run("set", "image", f"deployment/{workflow.APP}", f"{workflow.CONTAINER}={image}")
        workflow.watch_rollout(kubectl, image, now["desired"], timeout=120)
    if now["desired"] != replicas:
        workflow.scale(kubectl, replicas)


RELEASES = ("shipml-serving:0.1.0", "shipml-serving:0.2.0")


def missing_images() -> list[str]:
    return [image for image in RELEASES
            if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode]


@pytest.fixture(scope="module")
def real_pods(tmp_path_factory):
    """Real pods for the module: an existing kind cluster named `shipml`, else the kit's control
    plane with a real node (and one kwok node beside it, so the taint is exercised), torn down after
    the module. Skips, with both reasons, only where neither can run. The two releases are built
    first if Docker lacks them (`shipml docker build`)."""
    from shipml.cluster.session import ClusterSession, kind_reachable, real_node_reason

    if kind_reachable():
        session = ClusterSession("kind", context=kind.kind_context())
    else:
        reason = real_node_reason()
        if reason:
            pytest.skip(f"no real pods here: no kind cluster ({kind.kind_unavailable_reason() or 'none named shipml'})"
                        f" and no real node ({reason})")
        session = None
    if missing_images():
        from shipml.containers.releases import build_releases

        build_releases(progress="none")
    if session is not None:
        for image in RELEASES:
            kind.load_image(image)
        yield session
        return
    state = tmp_path_factory.mktemp("real-node") / "state"
    cluster = up(1, state_dir=state, build=True, real_node=True, images=RELEASES)
    reaper.spawn(state)  # a pytest killed (CI timeout) must not leave a real node behind
    try:
        yield ClusterSession("real-node", fake=cluster)
    finally:
        down(state_dir=state)


