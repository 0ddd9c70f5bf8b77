"""kubectl bound to one kubeconfig/context/namespace, so every step targets the same cluster."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipml.cluster import shell


@dataclass(frozen=True)
class Kubectl:
    """Which cluster to talk to. `None` fields fall back to kubectl's own defaults
    ($KUBECONFIG or ~/.kube/config and its current context), so any cluster works."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None

    def argv(self, *args: str, namespaced: bool = True) -> list[str]:
        """The full command line for `kubectl <args>` against this cluster."""
        argv = ["kubectl"]
        if self.kubeconfig is not None:
            argv.append(f"--kubeconfig={self.kubeconfig}")
        if self.context is not None:
            argv.append(f"--context={self.context}")
        if namespaced and self.namespace is not None:
            argv.append(f"--namespace={self.namespace}")
        return argv + list(args)

    def run(
        self, *args: str, echo: bool = True, check: bool = True, timeout: float | None = 300,
        namespaced: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl, printing the command first (unless `echo=False`, for polling)."""
        return shell.run(
            self.argv(*args, namespaced=namespaced), echo=echo, check=check, timeout=timeout
        )

    def get_json(self, *args: str, echo: bool = False) -> Any:
        """`kubectl get ... -o json`, parsed."""
        done = self.run("get", *args, "-o", "json", echo=echo)
        return json.loads(done.stdout)

    def with_namespace(self, namespace: str | None) -> Kubectl:
        """The same cluster, another namespace."""
        return Kubectl(self.kubeconfig, self.context, namespace)
