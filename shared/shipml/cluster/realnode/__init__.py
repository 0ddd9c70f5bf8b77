"""A real node for the kit's control plane (`shipml cluster up --real-node`): containerd, kubelet,
kube-proxy and metrics-server on this machine (root only), so pods run containers, Services route
traffic and the HorizontalPodAutoscaler reads CPU. See node.py for what this machine needed."""

from shipml.cluster.realnode.build import build_node, missing_node_binaries
from shipml.cluster.realnode.node import NODE_NAME, RealNode, leftovers, unavailable_reason

__all__ = ["NODE_NAME", "RealNode", "build_node", "leftovers", "missing_node_binaries", "unavailable_reason"]
