"""Fixtures for the orchestration tests: a fake-node control plane for the session, the app
deployed on it once per module."""

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
def app(fake_cluster):
    """The kind overlay applied (server-side) and rolled out; deleted after the module."""
    from shipml.cluster import workflow

    kubectl = fake_cluster.kubectl("shipml")
    workflow.apply_overlay(kubectl, "kind")
    workflow.wait_for_rollout(kubectl, timeout=120)
    yield kubectl
    workflow.delete_app(kubectl, "kind")


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


