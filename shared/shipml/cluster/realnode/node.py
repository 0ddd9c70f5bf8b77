"""A real node joined to the kit's control plane: containerd, kubelet, kube-proxy and metrics-server
as host processes (root only), so pods really run, Services really route and the HPA reads CPU.

What this machine needed, each set below where it is used: kubelet >= 1.35 refuses cgroup v1 unless
`failCgroupV1: false`; `cgroupDriver: cgroupfs`; `failSwapOn: false`; the kubelet bound to the node's own
address (on lo) since kwok's fake nodes advertise 127.0.0.1:10250; containerd with its own
root, state and socket, `SystemdCgroup = false` and `restrict_oom_score_adj = true` (no
CAP_SYS_RESOURCE here); a pause image made locally; CNI bridge + host-local + portmap + firewall
(Docker sets the FORWARD policy to DROP). Host tunables the kubelet changes are put back (host.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from shipml.cluster import shell
from shipml.cluster.controlplane import versions
from shipml.cluster.controlplane.certs import Certificates, signed_cert
from shipml.cluster.controlplane.processes import own_process
from shipml.cluster.kubectl import Kubectl
from shipml.cluster.realnode import host, images
from shipml.errors import ShipmlError

NODE_NAME = "shipml-node"
NODE_LABEL = "shipml.io/node"  # =real on the real node
TAINT_KEY = "shipml.io/real-node"
BRIDGE = "shipml-cni0"
POD_SUBNET = "10.244.0.0/24"
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
MARKER = Path("/run/shipml-realnode.json")  # one real node per machine (bridge, interface, iptables)
METRICS_SERVICE = "metrics-server"
SYSTEM_TOOLS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "ip", "iptables", "docker")


def node_ip() -> str:
    """The node's own address, added to lo for the run ($SHIPML_NODE_IP)."""
    return os.environ.get("SHIPML_NODE_IP", "10.254.254.1")


@dataclass
class RealNode:
    """What the node's teardown needs: its folders, socket, saved host settings, its processes."""

    state_dir: Path
    ip: str
    socket: Path
    tainted: bool
    sysctls: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    restored: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "state_dir": str(self.state_dir), "socket": str(self.socket)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RealNode:
        return cls(**{**data, "state_dir": Path(data["state_dir"]), "socket": Path(data["socket"])})

    @property
    def root(self) -> Path:
        return self.state_dir / "node"


def image_store() -> Path:
    """containerd's root (content and snapshots), kept between runs in the shipml cache so the
    images are imported once, not at every `up` ($SHIPML_NODE_IMAGES moves it)."""
    if os.environ.get("SHIPML_NODE_IMAGES"):
        return Path(os.environ["SHIPML_NODE_IMAGES"])
    return versions.cache_dir() / "realnode" / "containerd-root"


def cni_bin_dir() -> str | None:
    return next((d for d in CNI_BIN_DIRS if Path(d, "bridge").exists() and Path(d, "firewall").exists()), None)


def unavailable_reason() -> str | None:
    """Why a real node cannot run here (None when it can): root, the runtime, CNI, cgroups."""
    if os.geteuid() != 0:
        return "a real node needs root (kubelet, containerd, network setup)"
    missing = [tool for tool in SYSTEM_TOOLS if shutil.which(tool) is None]
    if missing:
        return (f"{', '.join(missing)} not on PATH (Debian: apt-get install containerd runc docker.io "
                "containernetworking-plugins; .ci/setup.d/35-realnode.sh does it)")
    if cni_bin_dir() is None:
        return "no CNI plugins (bridge, host-local, portmap, firewall): apt-get install containernetworking-plugins"
    if not Path("/sys/fs/cgroup/cpu").exists() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return "no cgroup file system at /sys/fs/cgroup"
    if not Path("/proc/sys/net/bridge").exists():
        return "the br_netfilter module is not loaded (modprobe br_netfilter)"
    return host.mount_namespace_works()


def free_port_on(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, user: str) -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "shipml", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "shipml", "context": {"cluster": "shipml", "user": user}}],
        "current-context": "shipml",
    }
    return write(path, yaml.safe_dump(config, sort_keys=False), 0o600)


def node_certificates(directory: Path, ca: Certificates, ip: str) -> dict[str, tuple[Path, Path]]:
    """Client and serving certificates of the node's programs, signed by the kit's CA."""
    client = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=clientAuth\n")
    server = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=serverAuth\nsubjectAltName={}\n")
    return {
        "kubelet-client": signed_cert(directory, "kubelet-client",
                                      f"/O=system:nodes/CN=system:node:{NODE_NAME}", client, ca),
        "kubelet-serving": signed_cert(directory, "kubelet-serving", f"/CN={NODE_NAME}",
                                       server.format(f"IP:{ip},DNS:{NODE_NAME}"), ca),
        "kube-proxy": signed_cert(directory, "kube-proxy", "/CN=system:kube-proxy", client, ca),
        "metrics-server": signed_cert(
            directory, "metrics-server", "/CN=metrics-server",
            server.format(f"IP:{ip},DNS:{METRICS_SERVICE}.kube-system.svc"), ca),
    }


def containerd_config(node: RealNode, cni_dir: str) -> str:
    """containerd 1.6 with its own root, state and socket; the CRI plugin set for this machine."""
    registry = node.root / "containerd" / "certs.d"
    # No registry is reachable: docker.io resolves to a closed local port, so a pull fails at once
    # (ErrImagePull, then ImagePullBackOff) instead of waiting on the network.
    write(registry / "docker.io" / "hosts.toml", 'server = "http://127.0.0.1:9"\n')
    cri = '"io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{image_store()}"
state = "{node.root / 'containerd' / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{node.socket}"
[ttrpc]
  address = "{node.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{node.root / 'containerd' / 'opt'}"
  [plugins.{cri}]
    sandbox_image = "{images.PAUSE_IMAGE}"
    # This machine withholds CAP_SYS_RESOURCE: without it every pod fails with
    # "can't get final child's PID from pipe" (runc cannot lower oom_score_adj).
    restrict_oom_score_adj = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_unprivileged_ports = false
    [plugins.{cri}.containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins.{cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.{cri}.containerd.runtimes.runc.options]
          SystemdCgroup = false
    [plugins.{cri}.cni]
      bin_dir = "{cni_dir}"
      conf_dir = "{node.root / 'cni' / 'net.d'}"
    [plugins.{cri}.registry]
      config_path = "{registry}"
"""


def cni_config(node: RealNode) -> dict[str, Any]:
    """bridge + host-local for pod addresses, portmap for hostPorts, firewall so Docker's FORWARD
    DROP policy lets pod traffic through (it adds CNI-FORWARD rules per pod)."""
    return {
        "cniVersion": "0.4.0", "name": "shipml",
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(node.root / "cni" / "ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
            {"type": "firewall"},
        ],
    }


def kubelet_config(node: RealNode, certs: Certificates, node_certs: dict) -> dict[str, Any]:
    serving_key, serving_cert = node_certs["kubelet-serving"]
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        # Bound to the node's own address only: kwok's fake nodes advertise 127.0.0.1:10250.
        "address": node.ip, "port": node.ports["kubelet"], "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1", "healthzPort": node.ports["kubelet-healthz"],
        "failCgroupV1": False,  # kubelet >= 1.35 refuses cgroup v1 (this machine's) otherwise
        "cgroupDriver": "cgroupfs", "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(certs.ca_cert)}},
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(serving_cert), "tlsPrivateKeyFile": str(serving_key),
        "podLogsDir": str(node.root / "pod-logs"),
        "clusterDomain": "cluster.local", "resolvConf": "/etc/resolv.conf",
        "maxPods": 40, "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 99, "imageGCLowThresholdPercent": 98,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%",
                         "imagefs.available": "2%", "nodefs.inodesFree": "2%"},
        "nodeStatusUpdateFrequency": "5s", "syncFrequency": "10s",
        "shutdownGracePeriod": "0s", "rotateCertificates": False,
    }
    if node.tainted:  # beside fake nodes: only pods that tolerate it land here
        config["registerWithTaints"] = [{"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"}]
    return config


def kube_proxy_config(node: RealNode, kubeconfig_path: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig_path)},
        "mode": "iptables", "hostnameOverride": NODE_NAME, "clusterCIDR": "10.244.0.0/16",
        "healthzBindAddress": f"127.0.0.1:{node.ports['proxy-healthz']}",
        "metricsBindAddress": f"127.0.0.1:{node.ports['proxy-metrics']}",
        # NodePorts answer on loopback only (never on the machine's network addresses).
        "nodePortAddresses": ["127.0.0.0/8"],
        "iptables": {"localhostNodePorts": True, "masqueradeAll": False},
        # 0: leave the host's conntrack table size and timeouts alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


RBAC = [
    # The kubelet as system:node:<name> (no Node authorizer here: RBAC only).
    ("shipml-node", "system:node", "User", f"system:node:{NODE_NAME}"),
    ("shipml-kube-proxy", "system:node-proxier", "User", "system:kube-proxy"),
    # The API server's own client certificate, for logs, exec and port-forward on the kubelet.
    ("shipml-apiserver-kubelet", "system:kubelet-api-admin", "User", "kube-apiserver-kubelet-client"),
]


def rbac_objects() -> list[dict[str, Any]]:
    return [{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}],
    } for name, role, kind, subject in RBAC]


def metrics_objects(node: RealNode, ca_pem: str) -> list[dict[str, Any]]:
    """The metrics API served through the aggregation layer by the host's metrics-server: a Service
    without selector whose endpoint is the node address, and the APIService (CA-verified)."""
    import base64

    meta = {"name": METRICS_SERVICE, "namespace": "kube-system",
            "labels": {"app.kubernetes.io/name": METRICS_SERVICE}}
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP",
                             "targetPort": node.ports["metrics-server"]}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {**meta, "name": f"{METRICS_SERVICE}-host",
                      "labels": {**meta["labels"], "kubernetes.io/service-name": METRICS_SERVICE,
                                 "endpointslice.kubernetes.io/managed-by": "shipml"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [node.ip], "conditions": {"ready": True}}],
         "ports": [{"name": "https", "port": node.ports["metrics-server"], "protocol": "TCP"}]},
        # The same address as a v1 Endpoints object, for resolvers that still read those.
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
         "subsets": [{"addresses": [{"ip": node.ip}],
                      "ports": [{"name": "https", "port": node.ports["metrics-server"], "protocol": "TCP"}]}]},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1beta1.metrics.k8s.io"},
         "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                  "versionPriority": 100, "caBundle": base64.b64encode(ca_pem.encode()).decode(),
                  "service": {"name": METRICS_SERVICE, "namespace": "kube-system", "port": 443}}},
    ]


def apply(kubectl: Kubectl, docs: list[dict[str, Any]]) -> None:
    shell.run(kubectl.argv("apply", "--server-side", "--field-manager=shipml-node", "-f", "-"),
              input_text=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}), echo=False)


def node_ready(kubectl: Kubectl) -> bool:
    done = kubectl.run("get", "node", NODE_NAME, "-o", "json", echo=False, check=False)
    if done.returncode != 0:
        return False
    conditions = json.loads(done.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def apiservice_available(kubectl: Kubectl) -> bool:
    done = kubectl.run("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json", echo=False, check=False)
    if done.returncode != 0:
        return False
    conditions = json.loads(done.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


START_LOCK = Path("/run/shipml-realnode.lock")


class RealNodeBusy(ShipmlError):
    """Another real node runs, or is starting, on this machine (one at a time)."""


@contextmanager
def machine_lock() -> Iterator[None]:
    """Held while a real node starts, until its marker names it and its processes run: two
    notebooks opening a cluster at once (nbval beside the browser test) never both start one, and
    neither mistakes the other's half-started node for a crashed one and tears it down."""
    import fcntl

    fd = os.open(START_LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RealNodeBusy("another real node is starting on this machine (one at a time)") from None
        yield
    finally:
        os.close(fd)  # releases the lock (so does the process dying)


def owner_alive(state_dir: Path) -> bool:
    """Whether any process recorded in a cluster's state folder still runs."""
    try:
        data = json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return False
    exes = data.get("exes", {})
    return any(own_process(name, pid, exes.get(name)) for name, pid in data.get("pids", {}).items())


def busy_owner() -> None:
    """RealNodeBusy if the machine's real node (the marker's) still runs."""
    owner = marker_owner()
    if owner is not None and owner_alive(owner):
        raise RealNodeBusy(f"a real node already runs on this machine (state {owner}); "
                           f"stop it with `shipml cluster down` (SHIPML_STATE_DIR={owner.parent})")


def busy_reason() -> str | None:
    """Why another real node blocks a new one (None when none runs or starts)."""
    try:
        with machine_lock():
            pass
    except RealNodeBusy as exc:
        return str(exc)
    try:
        busy_owner()
    except RealNodeBusy as exc:
        return str(exc)
    return None


def marker_owner() -> Path | None:
    """The state folder of the real node this machine runs (or ran and did not clean up)."""
    try:
        return Path(json.loads(MARKER.read_text())["state_dir"])
    except (OSError, ValueError, KeyError):
        return None


def node_args(cluster, node: RealNode, certs: Certificates, node_certs: dict, cni_dir: str,
              server: str) -> dict[str, list[str]]:
    """Write every config file; return the command-line flags of each node program, in start order."""
    root = node.root
    write(root / "containerd" / "config.toml", containerd_config(node, cni_dir))
    write(root / "cni" / "net.d" / "10-shipml.conflist", json.dumps(cni_config(node), indent=2))
    key, cert = node_certs["kubelet-client"]
    kubelet_kubeconfig = kubeconfig(root / "kubelet.kubeconfig", server, certs.ca_cert, cert, key,
                                    f"system:node:{NODE_NAME}")
    write(root / "kubelet.yaml", yaml.safe_dump(kubelet_config(node, certs, node_certs), sort_keys=False))
    key, cert = node_certs["kube-proxy"]
    proxy_kubeconfig = kubeconfig(root / "kube-proxy.kubeconfig", server, certs.ca_cert, cert, key,
                                  "system:kube-proxy")
    write(root / "kube-proxy.yaml", yaml.safe_dump(kube_proxy_config(node, proxy_kubeconfig), sort_keys=False))
    ms_key, ms_cert = node_certs["metrics-server"]
    admin = str(cluster.kubeconfig)
    return {
        "containerd": ["--config", str(root / "containerd" / "config.toml")],
        "kubelet": [
            f"--config={root / 'kubelet.yaml'}", f"--kubeconfig={kubelet_kubeconfig}",
            f"--root-dir={root / 'kubelet'}", f"--cert-dir={root / 'kubelet-pki'}",
            f"--hostname-override={NODE_NAME}", f"--node-ip={node.ip}",
            f"--node-labels={NODE_LABEL}=real", "--v=1",
        ],
        "kube-proxy": [f"--config={root / 'kube-proxy.yaml'}", "--v=1"],
        "metrics-server": [
            f"--kubeconfig={admin}", f"--authentication-kubeconfig={admin}",
            f"--authorization-kubeconfig={admin}",
            f"--bind-address={node.ip}", f"--secure-port={node.ports['metrics-server']}",
            f"--tls-cert-file={ms_cert}", f"--tls-private-key-file={ms_key}",
            f"--kubelet-certificate-authority={certs.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP", "--kubelet-use-node-status-port",
            f"--node-selector={NODE_LABEL}=real", "--metric-resolution=10s",
            "--kubelet-request-timeout=5s",  # must be below the resolution (it refuses to start)
            f"--cert-dir={root / 'metrics-server-pki'}",
        ],
    }


PROGRAMS = {
    "containerd": lambda: shutil.which("containerd") or "containerd",
    "kubelet": lambda: str(versions.bin_dir() / "kubelet"),
    "kube-proxy": lambda: str(versions.bin_dir() / "kube-proxy"),
    "metrics-server": lambda: str(versions.bin_dir() / "metrics-server"),
}


def _clean_up_stale_node(cluster, down) -> None:
    """One real node per machine: the marker names another state folder. Refused while that node still runs
    (``busy_owner``); otherwise it is brought down, or swept from the host when its state is gone."""
    owner = marker_owner()
    if owner is not None and owner != cluster.state_dir:
        busy_owner()
        print(f"  cleaning up after a real node that was not stopped (state {owner})")
        if not down(state_dir=owner, quiet=True):  # its state is gone: sweep the host anyway
            cleanup_host(RealNode(owner, node_ip(), Path("/nonexistent"), False))


def _load_images(node: RealNode, preload: list[str]) -> None:
    """Put the pause image (built locally: no registry) and the ``preload`` images from Docker into the
    node's containerd, so pods start without pulling."""
    if images.PAUSE_IMAGE not in images.node_images(node.socket):
        tar = images.pause_image_tar(versions.bin_dir() / "pause", node.root / "pause.tar")
        images.import_tar(node.socket, tar)
    missing = images.import_docker_images(node.socket, preload, image_store().with_name("imports.json"))
    if missing:
        print(f"  not in Docker, so not on the node: {', '.join(missing)}")


def start_node(cluster, certs: Certificates, *, tainted: bool, preload: list[str], timeout: float,
               start, wait_until, mark, running, down) -> RealNode:
    """Bring the node up on a running control plane; `start`/`wait_until`/`mark`/`running`/`down`
    are the stack's (passed in: the stack imports this module, not the other way round)."""
    _clean_up_stale_node(cluster, down)
    ip = node_ip()
    node = RealNode(cluster.state_dir, ip, Path(f"/run/shipml-{os.getpid()}-containerd.sock"), tainted)
    node.sysctls = host.read_sysctls()
    cluster.node = node.to_json()
    cluster.save()
    write(MARKER, json.dumps({"state_dir": str(cluster.state_dir)}))
    cni_dir = cni_bin_dir()
    node_certs = node_certificates(cluster.state_dir / "pki", certs, ip)
    host.add_node_address(ip)
    node.ports = {"kubelet": free_port_on(ip), "metrics-server": free_port_on(ip),
                  **{name: free_port_on("127.0.0.1")
                     for name in ("kubelet-healthz", "proxy-healthz", "proxy-metrics")}}
    cluster.node = node.to_json()
    cluster.save()
    kubectl = cluster.kubectl()
    apply(kubectl, rbac_objects())
    args = node_args(cluster, node, certs, node_certs, cni_dir, cluster.server)
    # containerd (with its shims and CNI plugins) and the kubelet share one private mount
    # namespace: the kubelet's kernel tunables are masked there (host.tunable_masks), and pod
    # volumes, rootfs overlays and network-namespace files never appear in the host's mounts.
    masks = host.tunable_masks(node.root / "tunables")
    start(cluster, "containerd", args["containerd"], PROGRAMS["containerd"](),
          preexec=host.new_mount_namespace(masks))
    wait_until("containerd", lambda: shell.run(images.ctr_argv(node.socket, "version"), echo=False,
                                               check=False).returncode == 0,
               timeout, cluster, "containerd")
    _load_images(node, preload)
    mark("containerd + images")
    start(cluster, "kubelet", args["kubelet"], PROGRAMS["kubelet"](),
          preexec=host.join_mount_namespace(cluster.pids["containerd"]))
    wait_until(f"node {NODE_NAME} Ready", lambda: node_ready(kubectl), timeout, cluster, "kubelet")
    mark("real node Ready")
    start(cluster, "kube-proxy", args["kube-proxy"], PROGRAMS["kube-proxy"]())
    if Path(PROGRAMS["metrics-server"]()).exists():
        start(cluster, "metrics-server", args["metrics-server"], PROGRAMS["metrics-server"]())
        apply(kubectl, metrics_objects(node, certs.ca_cert.read_text()))
        wait_until("the metrics API (metrics-server)", lambda: apiservice_available(kubectl), timeout,
                   cluster, "metrics-server")
        mark("metrics API")
    else:
        print("  metrics-server is not built (`shipml cluster build-node`): no metrics API, so no "
              "`kubectl top` and no CPU reading for the HPA")
    restored = host.restore_sysctls({k: v for k, v in node.sysctls.items() if k not in host.NEEDED_WHILE_RUNNING})
    node.restored["after-ready"] = sorted(restored)
    if restored:
        print("  restored host settings the kubelet changed: "
              + ", ".join(f"{k} {a}->{b}" for k, (a, b) in restored.items()))
    cluster.node = node.to_json()
    cluster.save()
    return node


def delete_pods_on_node(kubectl: Kubectl, timeout: float = 60) -> None:
    """Delete every pod bound to the real node while its kubelet still runs, so the kubelet stops
    the containers and the CNI plugins remove their addresses and firewall rules. The node is
    cordoned first (`kubectl cordon`, as a drain does): otherwise the ReplicaSets put replacements
    straight back on it."""
    kubectl.run("cordon", NODE_NAME, echo=False, check=False, timeout=30, namespaced=False)
    done = kubectl.run("get", "pods", "-A", "--field-selector", f"spec.nodeName={NODE_NAME}", "-o", "json",
                       echo=False, check=False, timeout=30)
    if done.returncode != 0:
        return
    for pod in json.loads(done.stdout)["items"]:
        kubectl.run("delete", "pod", "-n", pod["metadata"]["namespace"], pod["metadata"]["name"],
                    "--grace-period=1", "--wait=false", echo=False, check=False, timeout=30,
                    namespaced=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = kubectl.run("get", "pods", "-A", "--field-selector", f"spec.nodeName={NODE_NAME}", "-o",
                           "name", echo=False, check=False, timeout=30)
        if done.returncode != 0 or not done.stdout.strip():
            return
        time.sleep(0.5)


def stop_shims(node: RealNode) -> int:
    """Kill container shims (and their containers) that belong to this node's containerd."""
    killed = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "containerd-shim-runc-v2" and str(node.socket) in cmdline:
            try:
                children = process.children(recursive=True)
                for child in children:
                    child.kill()
                process.kill()
                killed.append(process)
            except psutil.Error:
                continue
    psutil.wait_procs(killed, timeout=10)
    return len(killed)


def cleanup_host(node: RealNode) -> dict[str, Any]:
    """After every node process stopped: mounts, sysctls, firewall, links, cgroups, log symlinks."""
    report: dict[str, Any] = {}
    kube_proxy = versions.bin_dir() / "kube-proxy"
    if kube_proxy.exists():
        shell.run([str(kube_proxy), "--cleanup"], echo=False, check=False, timeout=60)
    report["unmounted"] = len(host.unmount_under(node.root))
    report["firewall chains removed"] = len(host.remove_firewall_chains())
    host.remove_nft_tables()
    report["links removed"] = [BRIDGE] if host.delete_link(BRIDGE) else []
    report["node address removed"] = host.remove_node_address(node.ip)
    report["cgroups removed"] = len(host.remove_cgroups("kubepods"))
    for log in Path("/var/log/containers").glob("*.log"):
        try:
            if log.is_symlink() and str(node.root) in os.readlink(log):
                log.unlink()
        except OSError:
            continue
    report["sysctls restored"] = sorted(host.restore_sysctls(node.sysctls))
    for path in (node.socket, Path(f"{node.socket}.ttrpc")):
        path.unlink(missing_ok=True)
    if marker_owner() == node.state_dir:
        MARKER.unlink(missing_ok=True)
    return report


def leftovers(node: RealNode | None = None) -> dict[str, Any]:
    """What a real node could leave on the host; empty values everywhere after a clean teardown."""
    found: dict[str, Any] = {
        "firewall chains": host.firewall_leftovers(),
        "links": [BRIDGE] if host.link_exists(BRIDGE) else [],
        "node address": [node.ip] if node is not None and host.node_address_present(node.ip) else [],
        "cgroups": host.cgroups_left("kubepods"),
        "processes": [p.info["name"] for p in psutil.process_iter(["name", "exe"])
                      if p.info["exe"] and str(versions.bin_dir()) in p.info["exe"]
                      and p.info["name"] in ("kubelet", "kube-proxy", "metrics-server")],
    }
    if node is not None:
        found["mounts"] = host.mounts_under(node.root) if node.root.exists() else []
        now = host.read_sysctls()
        found["sysctls changed"] = {k: (v, now.get(k)) for k, v in node.sysctls.items() if now.get(k) != v}
    return found


def stop_process(cluster, name: str, timeout: float = 15) -> None:

    process = own_process(name, cluster.pids.get(name, -1), cluster.exes.get(name))
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except psutil.TimeoutExpired:
        process.kill()
        process.wait(5)


def stop_node(cluster, node: RealNode, *, quiet: bool = False) -> dict[str, Any]:
    """Pods deleted while the kubelet still runs, then metrics-server, kube-proxy, the kubelet,
    leftover shims and containerd stopped, in that order. The host cleanup follows (cleanup_host)."""

    report: dict[str, Any] = {}
    kubelet_alive = own_process("kubelet", cluster.pids.get("kubelet", -1)) is not None
    apiserver_alive = own_process("kube-apiserver", cluster.pids.get("kube-apiserver", -1)) is not None
    if kubelet_alive and apiserver_alive:
        if not quiet:
            print("  deleting the real node's pods while its kubelet runs")
        delete_pods_on_node(cluster.kubectl())
    for name in ("metrics-server", "kube-proxy", "kubelet"):
        if not quiet and name in cluster.pids:
            print(f"  stopping {name}")
        stop_process(cluster, name)
    report["shims killed"] = stop_shims(node)
    stop_process(cluster, "containerd")
    return report


def cluster_memory(cluster) -> dict[str, float]:
    """Resident memory (MiB) of the whole cluster: the control plane, the node's programs, and the
    pods (container shims with everything they run)."""

    groups = {"control plane": 0.0, "node programs": 0.0, "pods": 0.0}
    node_programs = {"containerd", *PROGRAMS}
    for name, pid in cluster.pids.items():
        process = own_process(name, pid, cluster.exes.get(name))
        if process is not None:
            group = "node programs" if name in node_programs else "control plane"
            groups[group] += process.memory_info().rss
    if cluster.node is not None:
        node = RealNode.from_json(cluster.node)
        for process in psutil.process_iter(["name", "cmdline"]):
            ours = str(node.socket) in (process.info["cmdline"] or [])
            if process.info["name"] == "containerd-shim-runc-v2" and ours:
                try:
                    groups["pods"] += sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
                except psutil.Error:
                    continue
    mib = {k: round(v / 2**20, 1) for k, v in groups.items()}
    mib["total"] = round(sum(mib.values()), 1)
    return mib
