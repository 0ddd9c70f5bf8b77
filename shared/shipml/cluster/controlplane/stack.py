"""Start and stop the fake-node control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok, all on 127.0.0.1, as background processes owned by a state folder."""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil
import yaml

from shipml import waiting
from shipml.cluster import shell
from shipml.cluster.controlplane import versions
from shipml.cluster.controlplane.build import build_controlplane, missing_binaries
from shipml.cluster.controlplane.certs import Certificates, make_certificates
from shipml.cluster.controlplane.processes import own_process
from shipml.cluster.kubectl import Kubectl
from shipml.errors import ShipmlError
from shipml.net import free_port

CONTEXT = "shipml-fake"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


@dataclass
class FakeCluster:
    """A running fake-node cluster: how to reach it and which processes are its own."""

    state_dir: Path
    kubeconfig: Path
    context: str
    server: str
    pids: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    exes: dict[str, str] = field(default_factory=dict)  # programs not in the cache (containerd)
    components: list[str] = field(default_factory=lambda: list(versions.BINARIES))
    node: dict | None = None  # the real node (shipml.cluster.realnode.node.RealNode), if any
    fake_nodes: int = 0

    @property
    def has_real_node(self) -> bool:
        return self.node is not None

    def kubectl(self, namespace: str | None = None) -> Kubectl:
        """kubectl bound to this cluster's own kubeconfig (never ~/.kube/config)."""
        return Kubectl(self.kubeconfig, self.context, namespace)

    def save(self) -> None:
        data = {**asdict(self), "state_dir": str(self.state_dir), "kubeconfig": str(self.kubeconfig)}
        (self.state_dir / "state.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> FakeCluster | None:
        try:
            data = json.loads((state_dir / "state.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(**{**data, "state_dir": Path(data["state_dir"]),
                      "kubeconfig": Path(data["kubeconfig"])})


def running(state_dir: Path | None = None) -> FakeCluster | None:
    """The fake cluster recorded in `state_dir` if all its processes are alive, else None."""
    cluster = FakeCluster.load(state_dir or versions.state_dir())
    if cluster is None or not cluster.pids:
        return None
    alive = all(own_process(name, pid, cluster.exes.get(name)) for name, pid in cluster.pids.items())
    return cluster if alive and set(cluster.pids) == set(cluster.components) else None


def write_kubeconfig(path: Path, server: str, certs: Certificates) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {
            "server": server, "certificate-authority": str(certs.ca_cert)}}],
        "users": [{"name": "shipml-admin", "user": {
            "client-certificate": str(certs.admin_cert), "client-key": str(certs.admin_key)}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "shipml-admin"}}],
        "current-context": CONTEXT,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _apiserver_args(certs: Certificates, ports: dict[str, int], etcd_url: str, real_node: bool) -> list[str]:
    """kube-apiserver's flags: TLS and service accounts from ``certs``, the kubelet client (logs, exec,
    port-forward on a real node) and the aggregation layer (metrics-server)."""
    return [
        f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1", f"--secure-port={ports['apiserver']}",
        f"--tls-cert-file={certs.apiserver_cert}", f"--tls-private-key-file={certs.apiserver_key}",
        f"--client-ca-file={certs.ca_cert}",
        f"--service-account-key-file={certs.service_account_pub}",
        f"--service-account-signing-key-file={certs.service_account_key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=RBAC",
        "--profiling=false",
        # logs, exec and port-forward through the kubelets (real node), by node address
        f"--kubelet-client-certificate={certs.kubelet_client_cert}",
        f"--kubelet-client-key={certs.kubelet_client_key}",
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        # the aggregation layer (metrics.k8s.io from metrics-server), straight to endpoints
        f"--requestheader-client-ca-file={certs.ca_cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={certs.front_proxy_cert}",
        f"--proxy-client-key-file={certs.front_proxy_key}",
        "--enable-aggregator-routing=true",
        # the real node's kubelet serves a certificate from this CA (kwok's fake ones do not)
        *([f"--kubelet-certificate-authority={certs.ca_cert}"] if real_node else []),
        # 127.0.0.1 may not be published as the `kubernetes` Service endpoint; nothing in
        # this cluster calls the API from a pod, so that endpoint is not maintained.
        "--endpoint-reconciler-type=none",
    ]


def component_args(cluster: FakeCluster, certs: Certificates, ports: dict[str, int],
                   real_node: bool = False) -> dict[str, list[str]]:
    """Command-line flags of each component (the order is the start order)."""
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
    kubeconfig = str(cluster.kubeconfig)
    client_auth = [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
                   f"--authorization-kubeconfig={kubeconfig}", "--leader-elect=false",
                   "--bind-address=127.0.0.1"]
    return {
        "etcd": [
            "--name=shipml", f"--data-dir={cluster.state_dir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=shipml={peer_url}", "--log-level=warn",
            "--quota-backend-bytes=1073741824",
        ],
        "kube-apiserver": _apiserver_args(certs, ports, etcd_url, real_node),
        "kube-controller-manager": [
            *client_auth, "--secure-port=0",
            f"--service-account-private-key-file={certs.service_account_key}",
            f"--root-ca-file={certs.ca_cert}", "--use-service-account-credentials=false",
            f"--cluster-signing-cert-file={certs.ca_cert}",
            f"--cluster-signing-key-file={certs.ca_key}",
            "--horizontal-pod-autoscaler-sync-period=5s",
        ],
        "kube-scheduler": [*client_auth, "--secure-port=0"],
        "kwok": [
            f"--kubeconfig={kubeconfig}", f"--config={versions.kwok_stages_file()}",
            "--manage-all-nodes=false",
            # kwok renews each fake node's Lease: without it the only heartbeat is the node status
            # kwok patches about once a minute, beyond the node controller's 50 s grace period, so the
            # nodes flap Unknown and every pod on them is marked not Ready for good (~60 s after start)
            "--node-lease-duration-seconds=40",
            f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1",
            f"--server-address=127.0.0.1:{ports['kwok']}",
        ],
    }


def start(cluster: FakeCluster, name: str, args: list[str], exe: str | None = None,
          preexec=None) -> None:
    """Start one component in its own session (it outlives this Python), logging to a file;
    `preexec` runs in the child before exec (the real node's mount namespace)."""
    log = cluster.state_dir / "logs" / f"{name}.log"
    print(f"  starting {name} (log: {log})", flush=True)
    if exe is not None:
        cluster.exes[name] = exe
    if name not in cluster.components:
        cluster.components.append(name)
    with open(log, "w") as out:
        process = subprocess.Popen(
            [exe or str(versions.bin_dir() / name), *args], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=cluster.state_dir, start_new_session=True,
            preexec_fn=preexec,
        )
    cluster.pids[name] = process.pid
    cluster.save()


def wait_until(what: str, ready, timeout: float, cluster: FakeCluster, log: str) -> None:
    """Poll `ready()` until true; on timeout, fail with the last line of the component's log."""

    def ready_or_exited() -> bool:
        if not own_process(log, cluster.pids.get(log, -1), cluster.exes.get(log)):
            raise ShipmlError(f"{log} exited while starting: {log_tail(cluster, log)}")
        return bool(ready())

    waiting.wait_until(ready_or_exited, timeout, interval=0.2, what=what, detail=lambda: log_tail(cluster, log))


def log_tail(cluster: FakeCluster, name: str) -> str:
    """The line that says why: the last error line (a Go program that panics or prints its usage
    ends with a stack or flag list, not the reason), else the last line."""
    lines = (cluster.state_dir / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
    errors = [line for line in lines if line.startswith(("Error:", "error:", "E", "F", "panic:"))
              and not line.startswith(("Examples", "Environment"))]
    return (errors or lines or ["(empty log)"])[-1].strip()


def http_ok(url: str, **kwargs) -> bool:
    try:
        return httpx.get(url, timeout=2, **kwargs).status_code == 200
    except httpx.HTTPError:
        return False


def fake_nodes(count: int) -> list[dict]:
    """Node objects kwok will manage (it reports them Ready and runs their pods' fake lifecycle)."""
    resources = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "20Gi", "pods": "110"}  # the pods request disk too
    return [{
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": f"kwok-node-{i}",
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": f"kwok-node-{i}",
                       "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
        },
        "status": {"allocatable": resources, "capacity": resources},
    } for i in range(count)]


def nodes_ready(kubectl: Kubectl, count: int) -> bool:
    nodes = kubectl.get_json("nodes")["items"]
    ready = [n for n in nodes for c in n.get("status", {}).get("conditions", [])
             if c["type"] == "Ready" and c["status"] == "True"]
    return len(ready) >= count


def up(nodes: int = 3, *, state_dir: Path | None = None, build: bool = True,
       timeout: float = 90, real_node: bool = False, images: tuple[str, ...] = ()) -> FakeCluster:
    """Start the cluster (or return the one already running) and wait until its nodes are Ready
    and the default service account exists (pods cannot be created before). `nodes` kwok fake
    nodes; with `real_node`, a real node too (root only; tainted when fake nodes run beside it),
    with `images` imported from Docker."""
    state_dir = state_dir or versions.state_dir()
    existing = running(state_dir)
    if existing is not None:
        if real_node and not existing.has_real_node:
            raise ShipmlError("a cluster without a real node is running; `shipml cluster down` first")
        print(f"cluster already running: --kubeconfig={existing.kubeconfig}")
        return existing
    if nodes < 0 or (nodes == 0 and not real_node):
        raise ShipmlError("a cluster needs a node: --nodes >= 1, or --real-node")
    down(state_dir=state_dir, quiet=True)  # leftovers of a crashed run
    if real_node:
        from shipml.cluster.realnode import build as node_build
        from shipml.cluster.realnode.node import unavailable_reason as node_reason

        reason = node_reason()
        if reason:
            raise ShipmlError(f"no real node here: {reason}")
        if node_build.missing_node_binaries():
            if build:
                node_build.build_node()
            elif node_build.missing_node_binaries(required_only=True):
                raise ShipmlError("real-node binaries missing: "
                                  f"{', '.join(node_build.missing_node_binaries(required_only=True))}; "
                                  "run `shipml cluster build-node`")
    if missing_binaries():
        if not build:
            raise ShipmlError(f"control-plane binaries missing: {', '.join(missing_binaries())}; "
                              "run `shipml cluster build-controlplane`")
        print(f"building the control plane (first time only; cached in {versions.bin_dir()})")
        build_controlplane()
    started = time.perf_counter()
    (state_dir / "logs").mkdir(parents=True)
    ports = {name: free_port() for name in ("etcd", "etcd-peer", "apiserver", "kwok")}
    cluster = FakeCluster(state_dir, state_dir / "kubeconfig", CONTEXT,
                          f"https://127.0.0.1:{ports['apiserver']}")
    cluster.fake_nodes = nodes
    if nodes == 0:
        cluster.components.remove("kwok")
    lock = contextlib.nullcontext()
    if real_node:
        from shipml.cluster.realnode.node import busy_owner, machine_lock

        lock = machine_lock()  # one real node starts at a time (RealNodeBusy otherwise)
    with lock:
        if real_node:
            busy_owner()  # one that already runs: RealNodeBusy before starting a control plane
        try:
            bring_up(cluster, ports, nodes, timeout, started, real_node, images)
        except BaseException:
            down(state_dir=state_dir, quiet=True)
            raise
    return cluster


def bring_up(cluster: FakeCluster, ports: dict[str, int], nodes: int, timeout: float,
             started: float, real_node: bool = False, images: tuple[str, ...] = ()) -> None:
    def mark(step: str) -> None:
        cluster.seconds[step] = round(time.perf_counter() - started, 2)

    certs = make_certificates(cluster.state_dir / "pki")
    write_kubeconfig(cluster.kubeconfig, cluster.server, certs)
    mark("certificates")
    args = component_args(cluster, certs, ports, real_node)
    start(cluster, "etcd", args["etcd"])
    wait_until("etcd", lambda: http_ok(f"http://127.0.0.1:{ports['etcd']}/health"),
               timeout, cluster, "etcd")
    mark("etcd")
    start(cluster, "kube-apiserver", args["kube-apiserver"])
    tls_context = ssl.create_default_context(cafile=str(certs.ca_cert))
    tls_context.load_cert_chain(str(certs.admin_cert), str(certs.admin_key))
    tls = {"verify": tls_context}
    wait_until("kube-apiserver", lambda: http_ok(f"{cluster.server}/readyz", **tls),
               timeout, cluster, "kube-apiserver")
    mark("kube-apiserver")
    for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
        if name in cluster.components:
            start(cluster, name, args[name])
    kubectl = cluster.kubectl()
    if nodes:
        shell.run(kubectl.argv("apply", "--server-side", "-f", "-"),
                  input_text=json.dumps({"apiVersion": "v1", "kind": "List",
                                         "items": fake_nodes(nodes)}))
        wait_until(f"{nodes} fake nodes", lambda: nodes_ready(kubectl, nodes), timeout, cluster, "kwok")
        mark("nodes ready")
    if real_node:
        from shipml.cluster.realnode.node import start_node

        start_node(cluster, certs, tainted=nodes > 0, preload=list(images), timeout=max(timeout, 120),
                   start=start, wait_until=wait_until, mark=mark, running=running, down=down)
    default_sa = kubectl.with_namespace("default")
    wait_until("the default service account",
               lambda: default_sa.run("get", "serviceaccount", "default", echo=False,
                                      check=False).returncode == 0,
               timeout, cluster, "kube-controller-manager")
    mark("ready")
    cluster.save()
    what = " + ".join(filter(None, [f"{nodes} fake node(s)" if nodes else "",
                                    "a real node" if real_node else ""]))
    print(f"cluster with {what} ready in {cluster.seconds['ready']:.1f} s: "
          f"kubectl --kubeconfig={cluster.kubeconfig} get nodes")


def down(*, state_dir: Path | None = None, quiet: bool = False) -> bool:
    """Stop every process the fake cluster started and delete its state. True if one ran."""
    state_dir = state_dir or versions.state_dir()
    cluster = FakeCluster.load(state_dir)
    processes = []
    node_report = None
    if cluster is not None and cluster.node is not None:
        from shipml.cluster.realnode.node import RealNode, stop_node

        node_report = stop_node(cluster, RealNode.from_json(cluster.node), quiet=quiet)
    if cluster is not None:
        for name, pid in reversed(list(cluster.pids.items())):
            process = own_process(name, pid, cluster.exes.get(name))
            if process is not None:
                if not quiet:
                    print(f"  stopping {name} (pid {pid})")
                process.terminate()
                processes.append(process)
    # 5 s, then SIGKILL: the state is deleted next, and kube-apiserver can take 30 s+ to drain
    _, still_alive = psutil.wait_procs(processes, timeout=5)
    for process in still_alive:
        process.kill()
    psutil.wait_procs(still_alive, timeout=5)
    if node_report is not None:
        from shipml.cluster.realnode.node import RealNode, cleanup_host

        node_report.update(cleanup_host(RealNode.from_json(cluster.node)))
        if not quiet:
            print("  real node host cleanup: " + "; ".join(f"{k}: {v}" for k, v in node_report.items()))
    existed = state_dir.exists()
    shutil.rmtree(state_dir, ignore_errors=True)
    if not quiet:
        print("cluster removed" if cluster else "no cluster was running")
    return existed and cluster is not None
