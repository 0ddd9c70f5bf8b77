"""The kind steps: create a local cluster, load an image into it, delete it.

Each function prints the exact kind command it runs.
"""

from __future__ import annotations

import shutil
import subprocess

from shipml.cluster import shell
from shipml.cluster.kubectl import Kubectl
from shipml.paths import repo_root

CLUSTER_NAME = "shipml"


def kind_config_path() -> str:
    return str(repo_root() / "deploy" / "kind" / "kind-config.yaml")


def kind_context(name: str = CLUSTER_NAME) -> str:
    """kind names the kubeconfig context after the cluster."""
    return f"kind-{name}"


def kind_unavailable_reason() -> str | None:
    """Why kind cannot be used here, or None when kind and a Docker engine are present."""
    if shutil.which("kind") is None:
        return "kind is not installed (https://kind.sigs.k8s.io/docs/user/quick-start/)"
    if shutil.which("docker") is None:
        return "docker is not installed (kind runs its nodes as Docker containers)"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        return "no Docker engine answers `docker info`"
    return None


def kind_clusters() -> list[str]:
    if shutil.which("kind") is None:
        return []
    done = shell.run(["kind", "get", "clusters"], echo=False, check=False)
    return done.stdout.split() if done.returncode == 0 else []


def create_cluster(name: str = CLUSTER_NAME, wait: str = "120s") -> Kubectl:
    """`kind create cluster` with the course config (NodePort 30080 on localhost)."""
    shell.run(["kind", "create", "cluster", "--name", name, "--config", kind_config_path(),
               "--wait", wait], timeout=900)
    return Kubectl(context=kind_context(name))


def load_image(image: str, name: str = CLUSTER_NAME) -> None:
    """Copy a local Docker image into the kind nodes (they cannot pull it from a registry)."""
    shell.run(["kind", "load", "docker-image", image, "--name", name], timeout=600)


def delete_cluster(name: str = CLUSTER_NAME) -> None:
    shell.run(["kind", "delete", "cluster", "--name", name], timeout=300)
