"""Pick the cluster a notebook or lab works on: a reachable kind cluster; else, where this machine
can run one (root, containerd, CNI plugins: CI), the kit's control plane with a *real* node that runs
the pods; else a fake-node control plane (kwok: no container runs). The kit's own clusters start in a
temporary folder and are always removed by `close()`, host settings restored."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shipml.cluster import kind, reaper
from shipml.cluster.controlplane import FakeCluster, down, up
from shipml.cluster.kubectl import Kubectl
from shipml.errors import ShipmlError

RELEASE_IMAGES = ("shipml-serving:0.1.0", "shipml-serving:0.2.0")


@dataclass
class ClusterSession:
    """The cluster in use: `flavour` is "kind", "real-node" (the kit's control plane and a real node
    on this machine) or "fake-nodes" (kwok)."""

    flavour: str
    context: str | None = None
    fake: FakeCluster | None = None

    @property
    def real_pods(self) -> bool:
        """Whether containers really run (kind or the real node): traffic can be served."""
        return self.flavour in ("kind", "real-node")

    @property
    def overlay(self) -> str:
        """The overlay to apply: the kind one, or the realnode one where fake nodes sit beside the
        real node (it tolerates the real node's taint and selects it)."""
        if self.fake is not None and self.fake.has_real_node and self.fake.fake_nodes:
            return "realnode"
        return "kind"

    def placement(self) -> dict:
        """Pod spec fields that put a pod on the real node beside fake nodes (empty otherwise)."""
        if self.overlay != "realnode":
            return {}
        from shipml.cluster.realnode.node import NODE_LABEL, TAINT_KEY

        return {"nodeSelector": {NODE_LABEL: "real"},
                "tolerations": [{"key": TAINT_KEY, "operator": "Equal", "value": "true",
                                 "effect": "NoSchedule"}]}

    def kubectl(self, namespace: str | None = None) -> Kubectl:
        if self.fake is not None:
            return self.fake.kubectl(namespace)
        return Kubectl(context=self.context, namespace=namespace)

    def describe(self) -> str:
        if self.fake is not None and self.fake.has_real_node:
            beside = f" beside {self.fake.fake_nodes} kwok fake node(s)" if self.fake.fake_nodes else ""
            return (f"the kit's control plane with a REAL node on this machine{beside} (containerd, "
                    f"kubelet, kube-proxy, metrics-server: pods run containers), kubeconfig {self.fake.kubeconfig}")
        if self.fake is not None:
            return (f"fake-node control plane (real kube-apiserver, controller manager, scheduler, "
                    f"etcd; {len(self.fake.pids)} processes; kwok nodes run no containers), "
                    f"kubeconfig {self.fake.kubeconfig}")
        return f"kind cluster, context {self.context} (real nodes)"

    def close(self) -> None:
        """Remove the fake control plane (a kind cluster is the student's: it stays)."""
        if self.fake is not None:
            down(state_dir=self.fake.state_dir)
            shutil.rmtree(self.fake.state_dir.parent, ignore_errors=True)
            self.fake = None


def kind_reachable(name: str = kind.CLUSTER_NAME) -> bool:
    """A kind cluster `name` exists and its API server answers."""
    if kind.kind_unavailable_reason() or name not in kind.kind_clusters():
        return False
    argv = Kubectl(context=kind.kind_context(name)).argv("get", "--raw", "/readyz")
    return subprocess.run(argv, capture_output=True, timeout=20).returncode == 0


REAL_NODE_SWITCH = "SHIPML_REAL_NODE"


def real_node_reason() -> str | None:
    """Why the kit's real node cannot run here (None when it can). On by default wherever it can:
    root, containerd/runc/CNI plugins, cgroups, a private mount namespace, the programs cached or Go
    to build them, and no other real node running on the machine (one at a time).
    $SHIPML_REAL_NODE=0 turns it off (notebooks, labs and tests then use fake nodes or skip)."""
    import os

    from shipml.cluster.controlplane import unavailable_reason as controlplane_reason
    from shipml.cluster.realnode import missing_node_binaries, unavailable_reason
    from shipml.cluster.realnode.node import busy_reason
    if os.environ.get(REAL_NODE_SWITCH) == "0":
        return f"switched off ({REAL_NODE_SWITCH}=0)"
    reason = unavailable_reason() or controlplane_reason()
    if reason is None and missing_node_binaries():
        from shipml.cluster.controlplane.build import find_go

        try:
            find_go()
        except ShipmlError as exc:
            reason = f"the real-node programs are not built and cannot be: {exc}"
    return reason or busy_reason()


# The kubelet's deepest socket is <state>/node/kubelet/pod-resources/kubelet.sock and a unix socket's
# path holds at most 107 bytes, so a cluster's state folder must sit on a short path.
LONGEST_STATE_BASE = 32  # + "/shipml-real-node-XXXXXXXX/state" (32) + that tail (37) < 107


def state_folder(prefix: str) -> Path:
    """A fresh state folder for a cluster, on a short path. A kernel's TMPDIR can be deep (build/tmp in a
    clone under a long home folder, a grader's per-student work folder): then /tmp is used instead."""
    base = tempfile.gettempdir()
    if len(base) > LONGEST_STATE_BASE and os.access("/tmp", os.W_OK):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base)) / "state"


def _real_node_session(images: tuple[str, ...], fall_back: bool) -> ClusterSession | None:
    """The kit's control plane with a real node, torn down at exit; None (with `fall_back`) when
    another real node started first on this machine."""
    from shipml.cluster.realnode.node import RealNodeBusy

    state = state_folder("shipml-real-node-")
    try:
        session = ClusterSession("real-node", fake=up(0, state_dir=state, real_node=True, images=images))
    except RealNodeBusy as exc:
        shutil.rmtree(state.parent, ignore_errors=True)
        if not fall_back:
            raise
        print(f"No real node: {exc}")
        return None
    atexit.register(session.close)  # a kernel that stops early still tears the node down
    reaper.spawn(state)  # and one killed before its atexit handler finished, too
    return session


def open_cluster(use_kind: str = "auto", nodes: int = 3, real_node: str = "auto",
                 images: tuple[str, ...] = RELEASE_IMAGES) -> ClusterSession:
    """"auto": kind when reachable, else the real node when this machine can run it, else the
    fake-node control plane; `use_kind`/`real_node` "yes"/"no" force or forbid one. The real node runs
    alone (fake nodes are for the fake flavour), with `images` imported from Docker."""
    if use_kind not in ("auto", "yes", "no") or real_node not in ("auto", "yes", "no"):
        raise ShipmlError(f"use_kind and real_node take 'auto', 'yes' or 'no', not {use_kind!r}/{real_node!r}")
    session = None
    if use_kind != "no" and kind_reachable():
        session = ClusterSession("kind", context=kind.kind_context())
    elif use_kind == "yes":
        raise ShipmlError("no reachable kind cluster named 'shipml': run `shipml cluster create`")
    elif real_node != "no" and (real_node == "yes" or real_node_reason() is None):
        session = _real_node_session(images, fall_back=real_node == "auto")
    if session is None:
        reason = (real_node_reason() or "another real node took it first") if real_node != "no" else "real_node='no'"
        print(f"No kind cluster, no real node ({reason}): fake nodes")
        state = state_folder("shipml-fake-cluster-")
        session = ClusterSession("fake-nodes", fake=up(nodes, state_dir=state))
        atexit.register(session.close)  # a kernel that stops early still removes it
        reaper.spawn(state)  # and one killed before its atexit handler finished, too
    print(f"Using: {session.describe()}")
    return session
