"""Pinned versions of the fake-node control plane and where its files live.

The Go wrapper modules under deploy/controlplane/ pin the same versions (a test proves it).
"""

from __future__ import annotations

import os
from pathlib import Path

KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.7.3"
KWOK_VERSION = "v0.8.0"
# Kubernetes v1.37.2's .go-version: a newer Go built an apiserver that served broken OpenAPI.
GO_TOOLCHAIN = "go1.26.10"

KUBERNETES_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
BINARIES = (*KUBERNETES_BINARIES, "etcd", "kwok")

# The real node (`shipml cluster up --real-node`): kubelet and kube-proxy from the same wrapper
# module, a pause binary from deploy/controlplane/pause, metrics-server from its Go module.
NODE_BINARIES = ("kubelet", "kube-proxy")
METRICS_SERVER_VERSION = "v0.9.0"
NODE_EXTRA_BINARIES = ("pause", "metrics-server")
# kube-score (manifest linter run by tests/cluster/test_kube_score.py), built from its Go module.
KUBE_SCORE_VERSION = "v1.20.0"


def cache_dir() -> Path:
    """$SHIPML_CACHE_DIR, else $XDG_CACHE_HOME/shipml, else ~/.cache/shipml."""
    if os.environ.get("SHIPML_CACHE_DIR"):
        return Path(os.environ["SHIPML_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "shipml"


def release_dir() -> Path:
    """Built binaries and kwok's stages for this Kubernetes version."""
    return cache_dir() / "controlplane" / KUBERNETES_VERSION


def bin_dir() -> Path:
    return release_dir() / "bin"


def kwok_stages_file() -> Path:
    """kwok's own "fast" stages (node init, heartbeat, pod ready/complete/delete), copied at build."""
    return release_dir() / "kwok-stages.yaml"


def state_dir() -> Path:
    """Where a running fake cluster keeps certificates, kubeconfig, etcd data, logs and pids:
    $SHIPML_STATE_DIR, else $XDG_STATE_HOME/shipml, else ~/.local/state/shipml (never ~/.kube)."""
    if os.environ.get("SHIPML_STATE_DIR"):
        base = Path(os.environ["SHIPML_STATE_DIR"]).expanduser()
    else:
        xdg = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
        base = Path(xdg).expanduser() / "shipml"
    return base / "fake-cluster"
