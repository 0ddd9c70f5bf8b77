"""Build (once) and cache what a real node needs beyond the control plane: kubelet and kube-proxy
(from the same wrapper module, deploy/controlplane/kubernetes), the pod sandbox program (pause, from
deploy/controlplane/pause) and metrics-server (from its Go module, sigs.k8s.io/metrics-server), plus
kube-score for the manifest tests. Same toolchain, caches and lock as the control-plane build."""

from __future__ import annotations

import time
from pathlib import Path

from shipml.cluster.controlplane import versions
from shipml.cluster.controlplane.build import BuildReport, build_into_cache, build_lock, find_go, kubernetes_ldflags

NODE_PROGRAMS = (*versions.NODE_BINARIES, *versions.NODE_EXTRA_BINARIES)


# Without metrics-server the node still runs pods; only the metrics API (kubectl top, the HPA's
# CPU reading) is missing.
OPTIONAL_NODE_PROGRAMS = ("metrics-server",)


def missing_node_binaries(required_only: bool = False) -> list[str]:
    """Real-node programs not yet in the cache (`required_only`: those the node cannot run without)."""
    return [name for name in NODE_PROGRAMS if not (versions.bin_dir() / name).exists()
            and not (required_only and name in OPTIONAL_NODE_PROGRAMS)]


def kube_score_path() -> Path:
    return versions.bin_dir() / "kube-score"


def node_build_plan(out: Path) -> list[tuple[str, tuple[str, ...], list[str]]]:
    """(folder under deploy/controlplane, binaries it makes, go arguments) per build."""
    k8s = [f"k8s.io/kubernetes/cmd/{name}" for name in versions.NODE_BINARIES]
    return [
        ("kubernetes", versions.NODE_BINARIES,
         ["build", "-trimpath", "-ldflags", kubernetes_ldflags(), "-o", f"{out}/", *k8s]),
        ("pause", ("pause",), ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "pause"), "."]),
        # `go install module/cmd@version` builds a released module as its authors pinned it.
        ("pause", ("metrics-server",),
         ["install", "-trimpath", "-ldflags", "-s -w",
          f"sigs.k8s.io/metrics-server/cmd/metrics-server@{versions.METRICS_SERVER_VERSION}"]),
    ]


def build_node(force: bool = False, *, kube_score: bool = True, node: bool = True) -> BuildReport:
    """Build whatever real-node programs are missing (all with `force`) into the cache; `node=False`
    builds kube-score alone."""
    report = BuildReport()
    started = time.perf_counter()
    with build_lock():
        wanted = (set(NODE_PROGRAMS) if force else set(missing_node_binaries())) if node else set()
        plan_extra = []
        if kube_score and (force or not kube_score_path().exists()):
            wanted.add("kube-score")
            plan_extra.append(("pause", ("kube-score",),
                               ["install", "-trimpath", "-ldflags", "-s -w",
                                f"github.com/zegl/kube-score/cmd/kube-score@{versions.KUBE_SCORE_VERSION}"]))
        if not wanted:
            return report
        build_into_cache(find_go(), lambda out: [*node_build_plan(out), *plan_extra], wanted, report)
    report.seconds = time.perf_counter() - started
    return report
