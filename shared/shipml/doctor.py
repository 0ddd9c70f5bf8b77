"""A preflight report: what this machine has, and which course parts will run or be skipped."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = (
    "numpy", "pandas", "pyarrow", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "fastapi",
    "uvicorn", "docker", "papermill", "nbval", "jupyterlab", "dask",
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    python: str
    platform: str
    packages: dict[str, str]
    checks: list[Check] = field(default_factory=list)
    parts: dict[str, str] = field(default_factory=dict)  # course part -> "runs" or "skipped: why"
    extras: dict[str, str] = field(default_factory=dict)  # optional part of the kit -> installed or not


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def missing_extra(name: str, extra: str, exc: ImportError) -> Check:
    """A check that cannot run because an optional part of the kit is not installed."""
    return Check(name, False, f"the '{extra}' extra is not installed ({exc.name or exc}): "
                              f"pip install -c constraints.txt -e '.[{extra}]'")


def extras_installed() -> dict[str, str | None]:
    """Each extra of the kit: None when what it needs imports, else the missing module's name."""
    import importlib.util

    needs = {"serve": ("fastapi", "uvicorn", "httpx"), "edge": ("onnxruntime", "onnx", "skl2onnx"),
             "batch": ("dask.distributed",), "docker": ("docker",), "cluster": ("kubernetes_validate",),
             "grading": ("papermill", "nbclient"), "course": ("jupyterlab", "matplotlib"),
             "monitor": ("scipy", "prometheus_client", "matplotlib")}
    out: dict[str, str | None] = {}
    for extra, modules in needs.items():
        out[extra] = None
        for module in modules:
            try:
                found = importlib.util.find_spec(module) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                out[extra] = module
                break
    return out


def docker_engine() -> Check:
    try:
        from shipml.containers.engine import engine_available
    except ImportError as exc:
        return missing_extra("docker engine", "docker", exc)

    status = engine_available()
    return Check("docker engine", status.ok, status.reason if status.ok else f"no engine answers ({status.reason})")


def cluster_options() -> dict[str, str | None]:
    """Which clusters this machine can run: {"kind" | "real node" | "fake nodes": None or why not}."""
    from shipml.cluster.controlplane import unavailable_reason
    from shipml.cluster.session import kind_reachable, real_node_reason

    return {
        "kind": None if kind_reachable() else "no kind cluster named shipml answers",
        "real node": real_node_reason(),
        "fake nodes": unavailable_reason(),
    }


def cluster() -> Check:
    """A kind cluster for real nodes, else the kit's real node (root), else fake nodes (kwok)."""
    try:
        options = cluster_options()
    except ImportError as exc:
        return missing_extra("cluster", "cluster", exc)
    usable = [name for name, reason in options.items() if reason is None]
    summary = "; ".join(f"{name}: {'yes' if reason is None else 'no (' + reason + ')'}"
                        for name, reason in options.items())
    if not usable:
        return Check("cluster", False, f"no kind cluster, no real node and no fake-node control plane: {summary}")
    first = usable[0]
    what = {"kind": "a kind cluster named shipml (real nodes)",
            "real node": "the kit's control plane with a real node (pods run containers)",
            "fake nodes": "the fake-node control plane (kwok nodes run no containers)"}[first]
    return Check("cluster", True, f"{what} [{summary}]")


def prometheus() -> Check:
    """Debian's prometheus + promtool (notebook 06's live alerts; .ci/setup.d/40-prometheus.sh installs them)."""
    found = tool("prometheus", "--version")
    if found.ok and shutil.which("promtool") is None:
        return Check("prometheus", False, "prometheus found but promtool is missing")
    if not found.ok:
        return Check("prometheus", False, "not found on PATH (Debian/Ubuntu: sudo apt-get install prometheus)")
    return found


def grading_sandbox() -> Check:
    """Which sandbox ``shipml grade`` uses here (docker, bubblewrap, or none: then it refuses by default)."""
    try:
        from shipml.grading.sandbox import describe

        line = describe()
    except ImportError as exc:  # an install without the grading extras
        return Check("grading sandbox", False, f"grading is not installed ({exc.name} missing)")
    return Check("grading sandbox", not line.startswith("none"), line)


REQUIREMENTS = {"docker": docker_engine, "cluster": cluster, "prometheus": prometheus}


def unmet_requirement(notebook: str | Path) -> str | None:
    """Why a notebook cannot run here, from its metadata ``shipml.requires`` (None when it can)."""
    metadata = json.loads(Path(notebook).read_text()).get("metadata", {})
    for need in metadata.get("shipml", {}).get("requires", []):
        check = REQUIREMENTS[need]()
        if not check.ok:
            return f"needs {need}: {check.detail}"
    return None


def tool(name: str, *version_args: str) -> Check:
    path = shutil.which(name)
    if not path:
        return Check(name, False, "not found on PATH")
    try:
        out = subprocess.run([path, *version_args], capture_output=True, text=True, timeout=10)
        line = (out.stdout or out.stderr).strip().splitlines()
        return Check(name, True, line[0] if line else path)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check(name, False, f"found at {path} but did not answer ({exc})")


def is_wsl() -> bool:
    return "microsoft" in platform.uname().release.lower()


def environment_report() -> Report:
    report = Report(
        python=sys.version.split()[0],
        platform=f"{platform.system()} {platform.machine()}" + (" (WSL)" if is_wsl() else ""),
        packages=package_versions(),
    )
    docker = docker_engine()
    kind = tool("kind", "version")
    kubectl = tool("kubectl", "version", "--client")
    go = tool("go", "version")
    orchestration = cluster()
    prom = prometheus()
    report.checks = [docker, kind, kubectl, go, orchestration, grading_sandbox(), prom]
    extras = extras_installed()

    def needs(*names: str) -> str:
        missing = [f"'{n}' extra ({extras[n]} missing)" for n in names if extras[n]]
        return "runs" if not missing else "skipped: needs the " + ", ".join(missing)

    report.parts = {
        "00 welcome": needs("course"),
        "01 batch vs real-time": needs("course", "batch"),
        "02 REST serving": needs("course", "serve"),
        "03 containers": f"skipped: {docker.detail}" if not docker.ok else needs("course", "serve"),
        "04 Kubernetes": ("runs on " if orchestration.ok else "skipped: ") + orchestration.detail,
        "05 edge (ONNX)": needs("course", "edge"),
        "06 monitoring": needs("course", "serve", "monitor") if prom.ok else f"skipped: prometheus {prom.detail}",
    }
    report.extras = {k: ("installed" if v is None else f"not installed ({v} missing)") for k, v in extras.items()}
    if is_wsl() and kind.ok:
        report.parts["04 Kubernetes"] += " (note: kind create cluster fails on some WSL2 setups, kind#2323)"
    return report


def format_report(report: Report) -> str:
    lines = [f"Python {report.python} on {report.platform}", "", "packages:"]
    lines += [f"  {k:<14} {v}" for k, v in report.packages.items()]
    if report.extras:
        lines += ["", "extras (pip install -c constraints.txt -e '.[NAME]'):"]
        lines += [f"  {k:<14} {v}" for k, v in report.extras.items()]
    lines += ["", "tools:"]
    lines += [f"  {'ok ' if c.ok else 'no '} {c.name:<14} {c.detail}" for c in report.checks]
    lines += ["", "course parts on this machine:"]
    lines += [f"  {k:<24} {v}" for k, v in report.parts.items()]
    return "\n".join(lines)
