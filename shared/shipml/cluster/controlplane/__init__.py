"""A real Kubernetes control plane on 127.0.0.1 with kwok fake nodes, for machines without kind.

kube-apiserver, kube-controller-manager and kube-scheduler are the real programs, built from the
Kubernetes Go modules (see deploy/controlplane/); etcd stores the state. The nodes are *fake*:
kwok marks pods Ready without running any container, so everything the control plane does
(scheduling, ReplicaSets, rolling updates, endpoints, the HPA object) is real, while nothing serves
traffic. `shipml cluster up --fake-nodes` starts it, `shipml cluster down` removes it.
"""

from shipml.cluster.controlplane.build import build_controlplane, missing_binaries, unavailable_reason
from shipml.cluster.controlplane.stack import FakeCluster, down, running, up

__all__ = ["FakeCluster", "build_controlplane", "down", "missing_binaries", "running", "unavailable_reason", "up"]
