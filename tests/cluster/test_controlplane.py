"""The workflow against a real control plane (kube-apiserver, controller manager, scheduler,
etcd) whose nodes are kwok fakes: every object, controller and rollout is real; no container runs.
Tests share one deployment per module; the `app` fixture restores it after each test (any order works)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import psutil
import pytest
from shipml.cluster import render, shell, workflow
from shipml.cluster.controlplane import down, running, up
from shipml.errors import ShipmlError
from shipml.waiting import WaitTimeout, wait_until

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

CORPUS = Path(__file__).parent / "corpus"


def test_server_side_apply_with_strict_validation_rejects_a_misspelt_field(fake_cluster):
    docs = render.render(CORPUS / "misspelt-field.yaml")  # `readinesProbe` in the container
    kubectl = fake_cluster.kubectl("default")
    strict = kubectl.argv("apply", "--server-side", "--validate=strict", "-f", "-")
    with pytest.raises(ShipmlError, match="readinesProbe: field not declared in schema"):
        shell.run(strict, input_text=render.to_yaml(docs))
    # What strict server-side apply prevents: without validation the API server drops the
    # misspelt field and accepts a Deployment with no readiness probe at all.
    lenient = kubectl.argv("create", "--validate=ignore", "--dry-run=server", "-o", "json", "-f", "-")
    created = json.loads(shell.run(lenient, input_text=render.to_yaml(docs[:1])).stdout)
    container = created["spec"]["template"]["spec"]["containers"][0]
    assert "readinessProbe" not in container and "readinesProbe" not in container


def test_three_replicas_become_ready_on_fake_nodes(app):
    status = workflow.deployment_status(app)
    assert (status["desired"], status["ready"], status["available"]) == (3, 3, 3)
    pods = workflow.pods(app)
    assert len(pods) == 3 and all(p["ready"] and p["node"].startswith("kwok-node-") for p in pods)


def test_service_endpoints_list_every_ready_pod(app):
    expected = sorted(p["ip"] for p in workflow.pods(app))
    with contextlib.suppress(WaitTimeout):  # the assertion below shows what differs
        wait_until(lambda: workflow.endpoints(app) == expected, timeout=30, interval=0.5, what="the endpoints")
    assert workflow.endpoints(app) == expected and len(expected) == 3


def test_nodeport_service_has_a_url(app):
    assert workflow.service_url(app) == "http://localhost:30080"


def test_scale_up_and_back(app, capsys):
    workflow.scale(app, 5)
    printed = capsys.readouterr().out  # each step shows the command a student could type
    assert f"$ kubectl --kubeconfig={app.kubeconfig} --context=shipml-fake --namespace=shipml " \
           "scale deployment/shipml-serving --replicas=5" in printed
    assert workflow.deployment_status(app)["ready"] == 5
    workflow.scale(app, 3)
    assert len(workflow.pods(app)) == 3


def test_a_deleted_pod_is_replaced(app):
    before = {p["name"] for p in workflow.pods(app)}
    step = workflow.delete_pod_and_wait(app)
    after = {p["name"] for p in workflow.pods(app)}
    assert step.detail["deleted"] in before and step.detail["deleted"] not in after
    assert step.detail["replacement"] in after and len(after) == 3


def test_rolling_update_to_v2_keeps_every_replica_ready_then_rolls_back(app):
    step = workflow.rolling_update(app, "shipml-serving:0.2.0")
    pods = workflow.pods(app)
    assert {p["image"] for p in pods} == {"shipml-serving:0.2.0"} and len(pods) == 3
    assert step.detail["min_ready"] == 3  # maxUnavailable: 0, maxSurge: 1
    back = workflow.rollback(app)
    assert back.detail["image"] == "shipml-serving:0.1.0"
    assert {p["image"] for p in workflow.pods(app)} == {"shipml-serving:0.1.0"}


def test_reapplying_after_set_image_reports_the_field_manager_conflict(app):
    workflow.rolling_update(app, "shipml-serving:0.2.0")
    with pytest.raises(ShipmlError, match="conflict"):
        workflow.apply_overlay(app, "kind")
    workflow.apply_overlay(app, "kind", force_conflicts=True)
    workflow.wait_for_rollout(app)
    assert workflow.deployment_status(app)["image"] == "shipml-serving:0.1.0"


def test_hpa_is_accepted_and_evaluated_by_the_controller(app):
    def conditions_once_evaluated() -> dict:
        hpa = app.get_json("hpa/shipml-serving")
        found = {c["type"]: c for c in hpa.get("status", {}).get("conditions", [])}
        return found if "ScalingActive" in found else {}

    conditions = wait_until(conditions_once_evaluated, timeout=60, interval=1, what="the HPA's conditions")
    assert conditions["AbleToScale"]["status"] == "True"
    # No metrics-server here, exactly like a fresh kind cluster: the HPA cannot read CPU use.
    assert conditions["ScalingActive"]["status"] == "False"
    assert conditions["ScalingActive"]["reason"] == "FailedGetResourceMetric"


def test_pod_disruption_budget_counts_the_pods(app):
    status: dict = {}

    def counted() -> bool:
        status.update(app.get_json("pdb/shipml-serving").get("status", {}))
        return status.get("expectedPods") == 3

    with contextlib.suppress(WaitTimeout):  # the assertion below shows what differs
        wait_until(counted, timeout=30, interval=0.5, what="the PDB's pod count")
    assert (status["expectedPods"], status["disruptionsAllowed"]) == (3, 1)


def test_up_and_down_leave_no_process_behind_even_after_a_crash(tmp_path, fake_cluster):
    state = tmp_path / "second"
    cluster = up(1, state_dir=state, build=False)
    assert running(state) is not None and running(state).server != fake_cluster.server
    pids = list(cluster.pids.values())
    assert len(pids) == 5
    psutil.Process(cluster.pids["kwok"]).kill()  # one component dies
    psutil.Process(cluster.pids["kwok"]).wait(10)
    assert running(state) is None  # a half-dead cluster is not "running"
    assert down(state_dir=state) is True
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids)
    assert not state.exists() and running(state) is None


def test_service_account_token_controller_signs_tokens(fake_cluster):
    kubectl = fake_cluster.kubectl("default")
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
              "metadata": {"name": "default-token", "namespace": "default",
                           "annotations": {"kubernetes.io/service-account.name": "default"}}}
    shell.run(kubectl.argv("apply", "--server-side", "-f", "-"), input_text=json.dumps(secret))
    data = wait_until(lambda: kubectl.get_json("secret/default-token").get("data", {}).get("token")
                      and kubectl.get_json("secret/default-token")["data"], timeout=30, interval=0.5,
                      what="the service account token")
    assert {"token", "ca.crt", "namespace"} <= set(data)
