"""Orchestration on Kubernetes: render, validate and run the kit's manifests.

- `shipml.cluster.validate`: render overlays with kustomize, check them against the Kubernetes
  OpenAPI schemas and the kit's policy, without a cluster.
- `shipml.cluster.workflow` / `shipml.cluster.kind`: the steps students run (apply, rollout, scale,
  self-healing, rolling update, rollback), each printing the kubectl or kind command it runs.
- `shipml.cluster.controlplane`: a real API server, controller manager and scheduler on 127.0.0.1
  with kwok fake nodes, for machines where kind cannot run (CI).
"""

from shipml.cluster.kubectl import Kubectl
from shipml.cluster.validate import Problem, validate_path

__all__ = ["Kubectl", "Problem", "validate_path"]
