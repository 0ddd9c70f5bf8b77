"""Pick the cluster a notebook or lab works on: a reachable kind cluster, else a fresh fake-node
control plane (started in a temporary folder and always removed by `close()`)."""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shipml.cluster import kind
from shipml.cluster.controlplane import FakeCluster, down, up
from shipml.cluster.kubectl import Kubectl
from shipml.errors import ShipmlError


@dataclass
class ClusterSession:
    """The cluster in use: `flavour` is "kind" (real nodes) or "fake-nodes" (kwok)."""

    flavour: str
    context: str | None = None
    fake: FakeCluster | None = None

    def kubectl(self, namespace: str | None = None) -> Kubectl:
        if self.fake is not None:
            return self.fake.kubectl(namespace)
        return Kubectl(context=self.context, namespace=namespace)

    def describe(self) -> str:
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


def open_cluster(use_kind: str = "auto", nodes: int = 3) -> ClusterSession:
    """"auto": kind when reachable, else the fake-node control plane; "yes"/"no" force one."""
    if use_kind not in ("auto", "yes", "no"):
        raise ShipmlError(f"use_kind must be 'auto', 'yes' or 'no', not {use_kind!r}")
    if use_kind != "no" and kind_reachable():
        session = ClusterSession("kind", context=kind.kind_context())
    elif use_kind == "yes":
        raise ShipmlError("no reachable kind cluster named 'shipml': run `shipml cluster create`")
    else:
        state = Path(tempfile.mkdtemp(prefix="shipml-fake-cluster-")) / "state"
        session = ClusterSession("fake-nodes", fake=up(nodes, state_dir=state))
        atexit.register(session.close)  # a kernel that stops early still removes it
    print(f"Using: {session.describe()}")
    return session
