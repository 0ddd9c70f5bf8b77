"""Fixtures for the orchestration tests: a fake-node control plane for the session, the app
deployed on it once per module and restored after each test."""

from __future__ import annotations

import pytest
from shipml.cluster import kind
from shipml.cluster.controlplane import build_controlplane, down, missing_binaries, unavailable_reason, up


@pytest.fixture(scope="session")
def fake_cluster(tmp_path_factory):
    """A real control plane with 3 kwok fake nodes, in its own state folder; always torn down."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    if missing_binaries():  # normally done by .ci/setup.d/30-controlplane.sh
        build_controlplane()
    state = tmp_path_factory.mktemp("fake-cluster") / "state"
    cluster = up(3, state_dir=state, build=False)
    yield cluster
    down(state_dir=state)


@pytest.fixture(scope="module")
def deployed(fake_cluster):
    """The kind overlay applied (server-side) and rolled out once per module; deleted after it."""
    from shipml.cluster import workflow

    kubectl = fake_cluster.kubectl("shipml")
    workflow.apply_overlay(kubectl, "kind")
    workflow.wait_for_rollout(kubectl, timeout=120)
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


@pytest.fixture(scope="session")
def kind_cluster():
    """An existing kind cluster named `shipml` (create it with `shipml cluster create`)."""
    reason = kind.kind_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if kind.CLUSTER_NAME not in kind.kind_clusters():
        pytest.skip(f"no kind cluster named {kind.CLUSTER_NAME!r} (run `shipml cluster create`)")
    from shipml.cluster import Kubectl

    return Kubectl(context=kind.kind_context(), namespace="shipml")


