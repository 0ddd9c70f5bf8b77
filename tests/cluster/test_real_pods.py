"""What only real pods can show, on kind or on the kit's real node (CI): containers answering through
the Service on 127.0.0.1, self-healing, a rolling update v1 -> v2 under /predict load with no failed
request, rollback, the `:latest` pitfall for real, and an HPA that scales on CPU and back.

Tests run in file order on one deployment. Traffic goes only to 127.0.0.1 (the NodePort) and to the
pod and Service addresses of the cluster this module started. Timings are printed (`-s`) and written
to build/figures/real-pods.json for the README's figures."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from shipml.cluster import workflow
from shipml.cluster.controlplane.stack import POD_CIDR, SERVICE_CIDR
from shipml.errors import ShipmlError
from shipml.paths import repo_root

pytestmark = [pytest.mark.realpods, pytest.mark.slow]

V1, V2 = "shipml-serving:0.1.0", "shipml-serving:0.2.0"
FIGURES = repo_root() / "build" / "figures"
HPA_DEMO = Path(__file__).parent / "overlays" / "hpa-demo"
FIGURES_SEEN: dict[str, object] = {}


def record(name: str, value: object) -> None:
    FIGURES_SEEN[name] = value
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / "real-pods.json").write_text(json.dumps(FIGURES_SEEN, indent=2, default=str))
    print(f"FIGURE {name}: {value}")


@pytest.fixture(scope="module")
def served(real_pods):
    kubectl = real_pods.kubectl("shipml")
    started = time.perf_counter()
    workflow.apply_overlay(kubectl, real_pods.overlay)
    workflow.wait_for_rollout(kubectl, timeout=240)
    workflow.wait_for_hpa_floor(kubectl, timeout=180)
    record("apply to 3 Ready pods (s)", round(time.perf_counter() - started, 1))
    yield real_pods, kubectl
    workflow.delete_app(kubectl, real_pods.overlay)


def predict(url: str, key: str | None, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/predict", json=body, headers={"X-API-Key": key} if key else {}, timeout=10)


def test_pods_run_containers_on_real_nodes(served):
    session, kubectl = served
    pods = workflow.pods(kubectl)
    assert len(pods) == 3 and all(p["ready"] for p in pods)
    assert {p["image"] for p in pods} == {V1}
    if session.flavour == "real-node":
        from shipml.cluster.realnode import NODE_NAME

        assert {p["node"] for p in pods} == {NODE_NAME}  # tolerating the taint, selecting the node
        statuses = kubectl.get_json("pods", "-l", workflow.SELECTOR)["items"]
        assert all(s["status"]["containerStatuses"][0]["containerID"].startswith("containerd://")
                   for s in statuses)


def test_service_answers_predict_on_localhost_with_the_api_key(served):
    _, kubectl = served
    url = workflow.service_url(kubectl)
    assert url == "http://localhost:30080"
    body = workflow.transactions(1)[0]
    assert httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
    refused = predict(url, None, body)
    assert refused.status_code == 401, refused.text
    answer = predict(url, workflow.api_key(kubectl), body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 1


def test_pod_ip_and_cluster_ip_answer_too(served):
    session, kubectl = served
    if session.flavour != "real-node":
        pytest.skip("pod and Service addresses are reachable from this machine only on the kit's node")
    key, body = workflow.api_key(kubectl), workflow.transactions(1)[0]
    pod_ip = workflow.pods(kubectl)[0]["ip"]
    cluster_ip = kubectl.get_json(f"service/{workflow.APP}")["spec"]["clusterIP"]
    for url in (f"http://{pod_ip}:8080", f"http://{cluster_ip}:80"):
        assert predict(url, key, body).status_code == 200, url


def test_a_killed_pod_is_replaced_by_a_ready_one(served):
    _, kubectl = served
    step = workflow.delete_pod_and_wait(kubectl, timeout=180)
    record("self-heal: deleted pod replaced and Ready (s)", round(step.seconds, 1))
    assert len(workflow.pods(kubectl)) == 3


def test_a_killed_container_is_restarted_by_the_kubelet(served):
    """A crash for real: SIGKILL the serving container's process on the node; the kubelet restarts it
    and the pod is Ready again (its restartCount says so)."""
    import os
    import signal

    from shipml.cluster.realnode.images import ctr_argv

    session, kubectl = served
    if session.flavour != "real-node":
        pytest.skip("the container's process is on this machine only with the kit's node")
    name = workflow.pods(kubectl)[0]["name"]
    container_id = kubectl.get_json(f"pod/{name}")["status"]["containerStatuses"][0]["containerID"]
    tasks = subprocess.run(ctr_argv(Path(session.fake.node["socket"]), "tasks", "ls"), capture_output=True,
                           text=True, check=True).stdout.splitlines()
    pid = next(int(line.split()[1]) for line in tasks if line.startswith(container_id.split("//")[1]))
    started = time.perf_counter()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = kubectl.get_json(f"pod/{name}")["status"]["containerStatuses"][0]
        if status["restartCount"] >= 1 and status["ready"]:
            break
        time.sleep(0.5)
    record("killed container restarted and Ready (s)", round(time.perf_counter() - started, 1))
    assert status["restartCount"] >= 1 and status["ready"], status


def test_scale_up_and_back(served):
    _, kubectl = served
    up = workflow.scale(kubectl, 5, timeout=240)
    assert len(workflow.endpoints(kubectl)) == 5
    down = workflow.scale(kubectl, 3, timeout=240)
    record("scale 3 -> 5 / 5 -> 3 (s)", (round(up.seconds, 1), round(down.seconds, 1)))


def test_rolling_update_v1_to_v2_under_predict_load_fails_no_request(served):
    _, kubectl = served
    url = workflow.service_url(kubectl)
    load = workflow.predict_load(kubectl, url, max_requests=4000, max_seconds=240, max_rps=40,
                                 networks=(POD_CIDR, SERVICE_CIDR))
    step = workflow.rolling_update(kubectl, V2, load=load, timeout=240)
    result, samples = step.detail["load"], step.detail["samples"]
    versions = [s.version for s in samples if s.status == 200]
    switch = next(s.t for s in samples if s.version == 2)
    last_v1 = max(s.t for s in samples if s.version == 1)
    record("rolling update v1 -> v2 (s)", round(step.seconds, 1))
    record("rolling update: requests served / failed", (result.sent - result.failed, result.failed))
    record("rolling update: first v2 / last v1 answer after (s)", (round(switch, 1), round(last_v1, 1)))
    plot_switch(samples, step.detail["timeline"], FIGURES / "rolling-update.png")
    assert result.sent > 50 and result.failed == 0, str(result)
    # v1 first, then both while old and new pods are Ready side by side, then v2. A v1 answer can come
    # right as the rollout ends: a terminating pod keeps serving through its preStop pause while
    # kube-proxy drops it from the Service's rules.
    assert versions[0] == 1 and set(versions) == {1, 2}
    assert step.detail["min_ready"] == 3
    answers = answers_until_settled(kubectl, url, version=2)
    assert answers[-20:] == [2] * 20, answers


def answers_until_settled(kubectl, url: str, version: int, seconds: float = 30) -> list[int]:
    """The versions the Service answers with until 20 in a row say `version` (or `seconds` pass): a pod
    the rollout replaced keeps serving through its preStop pause while kube-proxy drops it."""
    key, body = workflow.api_key(kubectl), workflow.transactions(1)[0]
    answers: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and answers[-20:] != [version] * 20:
        answers.append(predict(url, key, body).json()["version"])
    return answers


def plot_switch(samples, timeline, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True)
    for version, colour in ((1, "tab:blue"), (2, "tab:orange")):
        times = [s.t for s in samples if s.version == version]
        top.plot(times, [version] * len(times), "|", color=colour, label=f"answered by model v{version}")
    failed = [s.t for s in samples if s.status != 200]
    top.plot(failed, [1.5] * len(failed), "x", color="red", label=f"failed ({len(failed)})")
    top.set_yticks([1, 2])
    top.set_ylabel("model version")
    top.legend(loc="center right", fontsize=8)
    bottom.step([p["t"] for p in timeline], [p["old"] for p in timeline], where="post", label="Ready v1 pods")
    bottom.step([p["t"] for p in timeline], [p["new"] for p in timeline], where="post", label="Ready v2 pods")
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("pods")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def test_rollback_returns_to_v1(served):
    _, kubectl = served
    step = workflow.rollback(kubectl, timeout=240)
    record("rollback v2 -> v1 (s)", round(step.seconds, 1))
    assert step.detail["image"] == V1
    answers = answers_until_settled(kubectl, workflow.service_url(kubectl), version=1)
    assert answers[-20:] == [1] * 20, answers


def wait_for_waiting_reason(kubectl, pod: str, wanted: set[str], timeout: float = 120) -> set[str]:
    reasons: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not reasons & wanted:
        statuses = kubectl.get_json(f"pod/{pod}").get("status", {}).get("containerStatuses", [])
        reasons |= {s.get("state", {}).get("waiting", {}).get("reason", "") for s in statuses}
        time.sleep(1)
    return reasons


def test_latest_tag_is_pulled_and_fails_while_never_pull_says_so(served):
    """The seed's pitfall for real: `:latest` means imagePullPolicy Always, so the node tries a
    registry (none here) even though it holds the image; `Never` with an image it lacks says so."""
    session, kubectl = served
    demo = kubectl.with_namespace("shipml-latest-demo")
    workflow.apply_manifests(kubectl.with_namespace(None), [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shipml-latest-demo"}}])
    spec = {"automountServiceAccountToken": False, **session.placement()}
    pods = [
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "latest"},
         "spec": {**spec, "containers": [{"name": "serving", "image": "shipml-serving:latest"}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "never"},
         "spec": {**spec, "containers": [{"name": "serving", "image": "shipml-serving:9.9.9",
                                          "imagePullPolicy": "Never"}]}},
    ]
    try:
        workflow.apply_manifests(demo, pods)
        latest = wait_for_waiting_reason(demo, "latest", {"ErrImagePull", "ImagePullBackOff"})
        never = wait_for_waiting_reason(demo, "never", {"ErrImageNeverPull"})
        print(demo.run("get", "pods", "-o", "wide").stdout)
    finally:
        kubectl.run("delete", "namespace", "shipml-latest-demo", "--wait=true", namespaced=False, timeout=180)
    assert latest & {"ErrImagePull", "ImagePullBackOff"}, latest
    assert "ErrImageNeverPull" in never, never


def metrics_api_available(kubectl) -> bool:
    done = kubectl.run("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", echo=False, check=False,
                       namespaced=False)
    return done.returncode == 0


def test_hpa_scales_up_under_predict_cpu_load_and_back_down(served):
    session, kubectl = served
    if session.flavour != "real-node":
        pytest.skip("the HPA demo overlay targets the kit's real node (on kind, install metrics-server)")
    assert metrics_api_available(kubectl), "metrics-server should serve the metrics API"
    workflow.apply_overlay(kubectl, HPA_DEMO, force_conflicts=True)
    workflow.wait_for_rollout(kubectl, timeout=240)
    deadline = time.monotonic() + 120  # minReplicas 1: the HPA brings the count down to 1 first
    while workflow.deployment_status(kubectl)["desired"] != 1 and time.monotonic() < deadline:
        time.sleep(2)
    workflow.wait_for_ready_count(kubectl, 1, 120)
    print(kubectl.run("top", "pods").stdout)
    url = workflow.service_url(kubectl)
    load = workflow.predict_load(kubectl, url, max_requests=200_000, max_seconds=240, workers=4,
                                 max_rps=None, networks=(POD_CIDR, SERVICE_CIDR))
    started = time.perf_counter()
    scaled_up = None
    with load:
        while time.perf_counter() - started < 180:
            status = workflow.deployment_status(kubectl)
            if status["desired"] > 1 and status["ready"] >= 2:
                scaled_up = time.perf_counter() - started
                break
            time.sleep(2)
    print(kubectl.run("get", "hpa").stdout)
    assert scaled_up is not None, f"no scale-up in 180 s under load: {load.result}"
    stopped = time.perf_counter()
    scaled_down = None
    while time.perf_counter() - stopped < 180:
        if workflow.deployment_status(kubectl)["desired"] == 1:
            scaled_down = time.perf_counter() - stopped
            break
        time.sleep(2)
    record("HPA: load to >= 2 Ready pods (s)", round(scaled_up, 1))
    record("HPA: load stopped to back at 1 replica (s)", None if scaled_down is None else round(scaled_down, 1))
    record("HPA load: requests", (load.result.sent, load.result.failed))
    assert scaled_down is not None, "the HPA did not scale back down within 180 s of the load stopping"
    assert scaled_up < 180


def test_memory_of_the_whole_cluster(served):
    session, _ = served
    if session.flavour != "real-node":
        pytest.skip("measured for the kit's own cluster (kind's runs in Docker)")
    from shipml.cluster.realnode.node import cluster_memory

    memory = cluster_memory(session.fake)
    record("cluster memory (MiB, RSS)", memory)
    assert memory["total"] > memory["control plane"] > 100


def test_errors_are_one_line(served):
    _, kubectl = served
    with pytest.raises(ShipmlError, match="refusing to load"):
        workflow.predict_load(kubectl, "http://192.0.2.1:80")
