"""Pictures for the primers, drawn from text with matplotlib (no downloaded images): Docker's moving parts
(notebook 03) and the Kubernetes vocabulary (notebook 04). Each function returns the figure."""

from __future__ import annotations

from typing import Any

BOX = {"boxstyle": "round,pad=0.4", "linewidth": 1.2}


def _box(ax: Any, x: float, y: float, text: str, color: str, fontsize: int = 9) -> None:
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize,
            bbox={**BOX, "facecolor": color, "edgecolor": "0.3"}, zorder=3)


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], label: str = "") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "0.25", "lw": 1.2}, zorder=2)
    if label:
        ax.text((start[0] + end[0]) / 2 + 0.01, (start[1] + end[1]) / 2, label, fontsize=8, color="0.25",
                ha="left", va="center", style="italic")


def _canvas(width: float, height: float, title: str) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    ax.set_title(title, fontsize=11, loc="left")
    return fig, ax


def docker_architecture() -> Any:
    """From `docker run` to a process: CLI -> daemon -> containerd -> runc -> namespaces + cgroups on the
    host's kernel; images as read-only layers with one writable copy-on-write layer; a registry."""
    fig, ax = _canvas(12, 5.6, "What happens on `docker run shipml-serving:0.1.0`")
    _box(ax, 0.09, 0.88, "docker CLI\n(or the Python SDK)", "#dbe9f6")
    _box(ax, 0.33, 0.88, "dockerd\nthe daemon: REST API,\nimages, networks, volumes", "#dbe9f6")
    _box(ax, 0.58, 0.88, "containerd\nruns and supervises\ncontainers", "#dbe9f6")
    _box(ax, 0.80, 0.88, "runc\nsets up namespaces\n+ cgroups, execs PID 1,\nthen exits", "#dbe9f6")
    _arrow(ax, (0.16, 0.88), (0.25, 0.88), "")
    _arrow(ax, (0.42, 0.88), (0.50, 0.88), "")
    _arrow(ax, (0.66, 0.88), (0.72, 0.88), "")
    _box(ax, 0.36, 0.64, "registry (Docker Hub, GHCR, a private one)\nimages by name:tag or by digest sha256:…",
         "#fde9c9")
    _arrow(ax, (0.33, 0.69), (0.33, 0.79), "pull / push")
    # layers
    layers = ["base image: Debian + python:3.11-slim", "venv: numpy, onnxruntime, fastapi …", "the kit's code",
              "/models: the ONNX bundles"]
    for i, text in enumerate(layers):
        _box(ax, 0.17, 0.08 + 0.085 * i, f"read-only layer {i + 1}: {text}", "#e8e8e8", fontsize=8)
    _box(ax, 0.17, 0.08 + 0.085 * 4 + 0.01, "writable layer (copy-on-write: a changed file is copied up here;\n"
         "gone with the container)", "#fff7b3", fontsize=8)
    ax.text(0.17, 0.49, "the image = stacked layers, shared by every container of it", ha="center", fontsize=8)
    # container on the kernel
    _box(ax, 0.70, 0.50, "container = an ordinary Linux process (tini -> python -m shipml serve)\n"
         "namespaces: its own PIDs, network, mounts, hostname, users\n"
         "cgroups: at most 1 CPU, 512 MiB, 100 processes", "#d9f2d9")
    _arrow(ax, (0.80, 0.78), (0.75, 0.58), "starts")
    _box(ax, 0.70, 0.20, "the HOST's Linux kernel, shared by every container\n"
         "(no guest OS: why a container starts in a second, and why a kernel bug is everyone's bug)", "#f6d5d5")
    _arrow(ax, (0.70, 0.42), (0.70, 0.28), "system calls")
    _arrow(ax, (0.36, 0.30), (0.52, 0.45), "mounted as its /")
    fig.tight_layout()
    return fig


def kubernetes_vocabulary() -> Any:
    """Control plane, nodes, pods, a Deployment's ReplicaSet and a Service with its DNS name."""
    from matplotlib.patches import FancyBboxPatch

    fig, ax = _canvas(12, 5.8, "Kubernetes in one picture: who decides, where it runs, how traffic finds it")
    _box(ax, 0.5, 0.90, "CONTROL PLANE (decides; runs no app)\n"
         "kube-apiserver: the only door, stores the desired state in etcd  |  scheduler: picks a node per pod\n"
         "controller-manager: Deployment -> ReplicaSet -> keeps N pods alive, endpoints, autoscaler", "#dbe9f6")
    _box(ax, 0.08, 0.90, "kubectl apply\n-f deployment.yaml", "#fde9c9")
    _arrow(ax, (0.15, 0.90), (0.20, 0.90))
    for i, x in enumerate((0.20, 0.50, 0.80)):
        ax.add_patch(FancyBboxPatch(
            (x - 0.13, 0.10), 0.26, 0.50, boxstyle="round,pad=0.01", facecolor="#f4f4f4", edgecolor="0.4",
            zorder=1))
        ax.text(x, 0.57, f"NODE {i + 1} (a machine: kubelet + container runtime)", ha="center", fontsize=8,
                weight="bold")
        pods = 2 if i < 2 else 1
        for j in range(pods):
            _box(ax, x, 0.45 - 0.15 * j, f"pod shipml-serving-…{'abc'[i]}{j}\n(1 container, its own IP,\n"
                 "ready when /v2/health/ready)", "#d9f2d9", fontsize=7)
        _arrow(ax, (0.5, 0.80), (x, 0.62))
    ax.text(0.63, 0.72, "the scheduler places pods; each node's kubelet starts them", fontsize=8, style="italic")
    _box(ax, 0.5, 0.02 + 0.0, "Service shipml-serving -> DNS name shipml-serving.shipml.svc.cluster.local:80, "
         "a stable virtual IP that load-balances to the READY pods only", "#fff7b3", fontsize=8)
    fig.tight_layout()
    return fig
