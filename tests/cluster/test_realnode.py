"""The real node's life cycle: up beside a fake node (tainted), a pod on it with real networking, and
a teardown that leaves the host as it found it (kernel settings, firewall chains, links, cgroups,
mounts, processes). Runs after test_real_pods.py has torn its own node down (one per machine)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shipml.cluster import reaper, workflow
from shipml.cluster.controlplane import down, running
from shipml.cluster.realnode import host
from shipml.cluster.realnode.images import PAUSE_IMAGE
from shipml.cluster.realnode.node import (
    BRIDGE,
    NODE_NAME,
    RealNode,
    leftovers,
    marker_owner,
)
from shipml.cluster.session import real_node_reason

pytestmark = [pytest.mark.realpods, pytest.mark.slow]

KUBELET_TUNABLES = tuple(host.KUBELET_TUNABLES)  # vm.overcommit_memory, kernel.panic, ...


class TunableWatch:
    """Samples the kubelet's kernel tunables every 20 ms in a thread (bounded: at most 10 minutes),
    so a change that lasted only until the node was Ready is still seen."""

    def __init__(self) -> None:
        import threading

        self.seen: dict[str, set[str]] = {name: set() for name in KUBELET_TUNABLES}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 600
        while not self._stop.is_set() and time.monotonic() < deadline:
            for name in KUBELET_TUNABLES:
                self.seen[name].add(host.sysctl_path(name).read_text().strip())
            self.samples += 1
            self._stop.wait(0.02)

    def stop(self) -> dict[str, set[str]]:
        self._stop.set()
        self._thread.join(5)
        return self.seen


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory):
    reason = real_node_reason()
    if reason:
        pytest.skip(f"no real node here: {reason}")
    before = host.read_sysctls()
    base = tmp_path_factory.mktemp("lifecycle")
    state = base / "fake-cluster"  # where the CLI puts it under $SHIPML_STATE_DIR
    watch = TunableWatch()
    try:  # the command a student types (its own state folder: never a parallel run's)
        done = subprocess.run([*SHIPML, "cluster", "up", "--real-node", "--fake-nodes", "--nodes", "1",
                               "--image", "shipml-serving:0.1.0"], env=cli_env(base),
                              capture_output=True, text=True, timeout=600)
    finally:
        seen = watch.stop()
    reaper.spawn(state)  # a pytest killed (CI timeout) must not leave a real node behind
    cluster = running(state)
    if cluster is None:
        down(state_dir=state)
        pytest.fail(f"`shipml cluster up --real-node` failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    yield cluster, before, seen, watch.samples
    down(state_dir=state)


SHIPML = [str(Path(sys.executable).with_name("shipml"))]


def cli_env(base: Path) -> dict[str, str]:
    import os

    return {**os.environ, "SHIPML_STATE_DIR": str(base)}


def pod(name: str, *, tolerate: bool) -> dict:
    spec = {"automountServiceAccountToken": False, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "pause", "image": PAUSE_IMAGE, "imagePullPolicy": "Never"}]}
    if tolerate:
        spec["nodeSelector"] = {"shipml.io/node": "real"}
        spec["tolerations"] = [{"key": "shipml.io/real-node", "operator": "Exists", "effect": "NoSchedule"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_the_kubelet_never_changed_the_hosts_kernel_tunables(node_cluster):
    """The kubelet finds its values masked in the node's mount namespace, so the host's
    vm.overcommit_memory (the grader's memory limits) never flips, not even while it starts."""
    cluster, before, seen, samples = node_cluster
    assert samples > 50, samples  # the watch really ran through the start
    assert seen == {name: {before[name]} for name in KUBELET_TUNABLES}, seen
    kubelet = cluster.pids["kubelet"]
    its_view = Path(f"/proc/{kubelet}/root/proc/sys/vm/overcommit_memory").read_text().strip()
    assert its_view == "1"  # what the kubelet reads: the mask
    assert host.node_address_present(RealNode.from_json(cluster.node).ip)


def test_node_is_ready_tainted_and_host_settings_were_put_back(node_cluster):
    cluster, before, _, _ = node_cluster
    node = cluster.kubectl().get_json(f"node/{NODE_NAME}")
    assert {"key": "shipml.io/real-node", "value": "true", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.37.2"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    now = host.read_sysctls()
    assert {k: now[k] for k in KUBELET_TUNABLES} == {k: before[k] for k in KUBELET_TUNABLES}
    assert marker_owner() == cluster.state_dir


def test_only_pods_that_tolerate_the_taint_land_on_the_real_node(node_cluster):
    cluster, *_ = node_cluster
    kubectl = cluster.kubectl("default")
    workflow.apply_manifests(kubectl, [pod("on-real", tolerate=True), pod("on-fake", tolerate=False)])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = {p["metadata"]["name"]: p for p in kubectl.get_json("pods")["items"]}
        ready = {name for name, p in pods.items()
                 for c in p.get("status", {}).get("conditions", []) if c["type"] == "Ready" and c["status"] == "True"}
        if ready >= {"on-real", "on-fake"}:
            break
        time.sleep(1)
    assert pods["on-real"]["spec"]["nodeName"] == NODE_NAME
    assert pods["on-fake"]["spec"]["nodeName"].startswith("kwok-node-")
    ip = pods["on-real"]["status"]["podIP"]
    assert ip.startswith("10.244.0.")
    assert host.link_exists(BRIDGE)
    assert any(chain.startswith("CNI-") for chains in host.firewall_leftovers().values() for chain in chains)
    # logs go API server -> kubelet: its client certificate, checked against the kubelet's CA-signed one
    assert kubectl.run("logs", "on-real", check=False).returncode == 0


def test_a_second_real_node_is_refused_while_one_runs(node_cluster, tmp_path):
    """One per machine: a second start (another notebook, the browser test beside nbval) is refused
    at once with RealNodeBusy, before it starts anything, and never tears down the running one."""
    from shipml.cluster.controlplane import up
    from shipml.cluster.realnode.node import RealNodeBusy, busy_reason

    cluster, *_ = node_cluster
    assert "a real node already runs" in (real_node_reason() or "") and busy_reason() is not None
    started = time.monotonic()
    with pytest.raises(RealNodeBusy, match="already runs"):
        up(0, state_dir=tmp_path / "state", real_node=True, build=False)
    assert time.monotonic() - started < 10
    assert running(cluster.state_dir) is not None and marker_owner() == cluster.state_dir


def test_down_removes_everything_and_restores_the_host(node_cluster, tmp_path):
    cluster, before, _, _ = node_cluster
    node = RealNode.from_json(cluster.node)
    pids = dict(cluster.pids)
    done = subprocess.run([*SHIPML, "cluster", "down"], env=cli_env(cluster.state_dir.parent),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "real node host cleanup" in done.stdout and "cluster removed" in done.stdout, done.stdout
    assert running(cluster.state_dir) is None
    found = leftovers(node)
    assert found["firewall chains"] == {}, found
    assert found["links"] == [] and found["cgroups"] == [] and found["processes"] == [], found
    assert found["node address"] == [], found
    assert found["mounts"] == [] and found["sysctls changed"] == {}, found
    assert host.read_sysctls() == before
    assert marker_owner() is None
    shims = subprocess.run(["pgrep", "-f", f"containerd-shim.*{node.socket}"], capture_output=True)
    assert shims.returncode == 1  # no shim of this node is left
    alive = [name for name, pid in pids.items()
             if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode == 0]
    assert alive == []
    assert not cluster.state_dir.exists()


def test_kubelet_config_is_what_this_machine_needs(tmp_path):
    from shipml.cluster.controlplane.certs import Certificates
    from shipml.cluster.realnode.node import cni_config, containerd_config, kube_proxy_config, kubelet_config

    node = RealNode(tmp_path, "10.254.254.1", Path("/run/x.sock"), tainted=True,
                    ports={"kubelet": 1, "kubelet-healthz": 2, "proxy-healthz": 3, "proxy-metrics": 4,
                           "metrics-server": 5})
    certs = Certificates(*(tmp_path / f"{i}" for i in range(8)))
    config = kubelet_config(node, certs, {"kubelet-serving": (tmp_path / "k", tmp_path / "c")})
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["failSwapOn"] is False and config["address"] == "10.254.254.1"
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["registerWithTaints"][0]["key"] == "shipml.io/real-node"
    toml = containerd_config(node, "/usr/lib/cni")
    assert "SystemdCgroup = false" in toml and "restrict_oom_score_adj = true" in toml
    assert f'address = "{node.socket}"' in toml and str(tmp_path) in toml
    assert [p["type"] for p in cni_config(node)["plugins"]] == ["bridge", "portmap", "firewall"]
    assert kube_proxy_config(node, tmp_path / "kc")["nodePortAddresses"] == ["127.0.0.0/8"]


def test_pause_image_is_an_oci_layout(tmp_path):
    import tarfile

    from shipml.cluster.realnode.images import pause_image_tar

    binary = tmp_path / "pause"
    binary.write_bytes(b"\x7fELF fake")
    tar = pause_image_tar(binary, tmp_path / "pause.tar")
    with tarfile.open(tar) as archive:
        names = archive.getnames()
        index = json.load(archive.extractfile("index.json"))
    assert {"oci-layout", "index.json"} <= set(names) and sum(n.startswith("blobs/sha256/") for n in names) == 3
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == PAUSE_IMAGE
