"""Build (once) and cache the control-plane binaries from the Go wrapper modules in
deploy/controlplane/. Go fetches the pinned toolchain and every module through the Go proxy;
its build and module caches live under the shipml cache so a second build is quick."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shipml.cluster.controlplane import versions
from shipml.errors import ShipmlError
from shipml.paths import repo_root

GO_LOCATIONS = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")


@dataclass
class BuildReport:
    """What a build did and how long it took."""

    built: list[str] = field(default_factory=list)
    seconds: float = 0.0
    bin_dir: Path = field(default_factory=versions.bin_dir)


def missing_binaries() -> list[str]:
    """Control-plane programs not yet in the cache."""
    return [name for name in versions.BINARIES if not (versions.bin_dir() / name).exists()]


def find_go() -> str:
    """The `go` command, or a ShipmlError saying the fake control plane needs Go to build."""
    fetched = versions.cache_dir() / "go" / "toolchain" / versions.GO_TOOLCHAIN / "bin" / "go"
    places = (*GO_LOCATIONS, str(fetched))  # the last one: fetched by .ci/setup.d/30-controlplane.sh
    found = shutil.which("go") or next((p for p in places if Path(p).exists()), None)
    if found is None:
        raise ShipmlError(
            "Go is not installed, so the control-plane binaries cannot be built "
            f"(they are missing from {versions.bin_dir()}); install Go 1.21+ from "
            "https://go.dev/dl/ (it fetches the pinned toolchain itself)"
        )
    return found


def go_env() -> dict[str, str]:
    """Environment for `go build`: the pinned toolchain and caches under the shipml cache."""
    cache = versions.cache_dir() / "go"
    return {
        **os.environ,
        "GOTOOLCHAIN": versions.GO_TOOLCHAIN,
        "GOCACHE": str(cache / "build"),
        "GOMODCACHE": str(cache / "mod"),
        "GOFLAGS": "-buildvcs=false -mod=readonly",
        "CGO_ENABLED": "0",
    }


def kubernetes_ldflags() -> str:
    """Stamp the release into the binaries, as Kubernetes' own build does."""
    major, minor, _ = versions.KUBERNETES_VERSION.lstrip("v").split(".")
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={versions.KUBERNETES_VERSION}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
        ]
    return " ".join(flags)


def build_plan(out: Path) -> list[tuple[str, tuple[str, ...], list[str]]]:
    """(wrapper module folder, binaries it makes, go arguments) for each module."""
    k8s = [f"k8s.io/kubernetes/cmd/{name}" for name in versions.KUBERNETES_BINARIES]
    return [
        ("kubernetes", versions.KUBERNETES_BINARIES,
         ["build", "-trimpath", "-ldflags", kubernetes_ldflags(), "-o", f"{out}/", *k8s]),
        ("etcd", ("etcd",),
         ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"]),
        ("kwok", ("kwok",),
         ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "kwok"), "sigs.k8s.io/kwok/cmd/kwok"]),
    ]


Plan = Callable[[Path], list[tuple[str, tuple[str, ...], list[str]]]]


def build_into_cache(go: str, plan: Plan, wanted: set[str], report: BuildReport) -> None:
    """Run each step of ``plan(scratch)`` that makes a ``wanted`` binary (``go build -o scratch`` or ``go install``
    with GOBIN = scratch, in deploy/controlplane/<folder>), then move its binaries into the cache: only once
    complete, so a half build is never cached."""
    modules = repo_root() / "deploy" / "controlplane"
    versions.bin_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=versions.release_dir()) as tmp:
        out = Path(tmp)
        for folder, names, args in plan(out):
            if not wanted.intersection(names):
                continue
            run_go(go, args, cwd=modules / folder, extra_env={"GOBIN": str(out)})
            for name in names:
                os.replace(out / name, versions.bin_dir() / name)
            report.built += list(names)


@contextmanager
def build_lock() -> Iterator[None]:
    """One build at a time per cache (CI setup and a test session may race)."""
    versions.release_dir().mkdir(parents=True, exist_ok=True)
    with open(versions.release_dir() / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_controlplane(force: bool = False) -> BuildReport:
    """Build whatever binaries are missing (everything with `force`) into the cache."""
    report = BuildReport()
    started = time.perf_counter()
    with build_lock():
        wanted = set(versions.BINARIES) if force else set(missing_binaries())
        if not wanted and versions.kwok_stages_file().exists():
            return report
        go = find_go()
        build_into_cache(go, build_plan, wanted, report)
        write_kwok_stages(go, repo_root() / "deploy" / "controlplane" / "kwok")
    report.seconds = time.perf_counter() - started
    return report


def run_go(go: str, args: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> None:
    """Run go (niced: the machine is shared), printing the command; one-line error on failure."""
    argv = ["nice", "-n", "10", go, *args]
    where = cwd.relative_to(repo_root())
    print(f"$ (cd {where} && GOTOOLCHAIN={versions.GO_TOOLCHAIN} nice go {shlex.join(args)})",
          flush=True)
    env = {**go_env(), **(extra_env or {})}
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise ShipmlError(f"go build in {cwd.name} failed: {lines[-1] if lines else done.returncode}")


def write_kwok_stages(go: str, kwok_module: Path) -> None:
    """Copy kwok's own fast stages from its module source: without stages kwok does nothing."""
    done = subprocess.run(
        [go, "list", "-m", "-json", "sigs.k8s.io/kwok"], cwd=kwok_module, env=go_env(),
        capture_output=True, text=True, check=True,
    )
    source = Path(json.loads(done.stdout)["Dir"]) / "kustomize" / "stage"
    files = [
        source / "node" / "fast" / "node-initialize.yaml",
        source / "node" / "heartbeat-with-lease" / "node-heartbeat-with-lease.yaml",
        source / "pod" / "fast" / "pod-ready.yaml",
        source / "pod" / "fast" / "pod-complete.yaml",
        source / "pod" / "fast" / "pod-delete.yaml",
    ]
    text = "\n---\n".join(file.read_text() for file in files)
    versions.kwok_stages_file().write_text(
        f"# kwok {versions.KWOK_VERSION}'s default stages, copied from {source}\n" + text
    )


def unavailable_reason() -> str | None:
    """Why the fake-node control plane cannot run here (None when it can, building it if needed)."""
    if shutil.which("kubectl") is None:
        return "kubectl is not on PATH"
    if shutil.which("openssl") is None:
        return "openssl is not on PATH (it makes the control plane's certificates)"
    if missing_binaries():
        try:
            find_go()
        except ShipmlError as exc:
            return f"the control-plane binaries are not built and cannot be: {exc}"
    return None
