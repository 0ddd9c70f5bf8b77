"""Run a grading worker in a child process (or a container) under a wall-clock limit.

The worker starts in a new session (``start_new_session=True``); the Jupyter kernel starts a session of
its own. When the wall clock runs out, the parent kills every process group in the worker's tree
(``os.killpg``, found with psutil before anything is killed), then anything left of the tree. With
``sandbox="docker"`` the worker runs in a throw-away container with no network, read-only mounts of
the kit, a memory and a process cap, and the parent removes the container on a timeout.

The worker reports JSON lines on its stdout (see :mod:`shipml.grading.worker`); they are read as they
come, so a notebook killed halfway still gives the results of the cells that ran.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from shipml.errors import ShipmlError
from shipml.paths import repo_root

SANDBOXES = ("none", "docker")
DOCKER_IMAGE = os.environ.get("SHIPML_GRADER_IMAGE", "python:3.11-slim")


@dataclass
class WorkerRun:
    events: list[dict[str, Any]] = field(default_factory=list)
    wall_timeout: bool = False
    returncode: int | None = None
    seconds: float = 0.0
    killed_groups: int = 0
    wall_limit: float = 0.0


def _worker_env(job_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPML_ANSWERS", "JPY_", "PYTEST"))}
    for var, sub in [("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                     ("MPLCONFIGDIR", "matplotlib"), ("JUPYTER_CONFIG_DIR", "jupyter-config")]:
        env[var] = str(job_dir / sub)  # per submission: no startup file survives into the next one
    env.update(MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONHASHSEED="0")
    return env


def _kill_tree(proc: subprocess.Popen) -> int:
    """SIGKILL every process group of the worker's tree; return how many groups were killed."""
    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    groups = set()
    for p in tree:
        try:
            groups.add(os.getpgid(p.pid))
        except ProcessLookupError:
            continue
    groups.discard(os.getpgid(0))  # never our own group
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    for p in tree:  # anything that left its group (setsid in student code)
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    return len(groups)


def _docker_command(job_file: Path, job_dir: Path, name: str, memory_mib: int, pids: int) -> list[str]:
    from shipml.containers.engine import engine_available

    status = engine_available()
    if not status:
        raise ShipmlError(f"--sandbox docker: {status.reason}")
    root = repo_root()
    mounts = {str(root): "ro", str(Path(sys.prefix)): "ro", str(Path(sys.base_prefix)): "ro", str(job_dir): "rw"}
    cmd = ["docker", "run", "--rm", "-i", "--name", name, "--network", "none", "--read-only",
           "--tmpfs", "/tmp:rw,size=512m", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
           f"--memory={memory_mib}m", f"--pids-limit={pids}", "--label", "io.shipml.owner=grader",
           "-e", "HOME=/tmp", "-w", str(job_dir)]
    for path, mode in mounts.items():
        cmd += ["-v", f"{path}:{path}:{mode}"]
    for var, value in _worker_env(job_dir).items():
        if var.startswith(("JUPYTER_", "IPYTHON", "MPL", "PYTHON", "OMP_", "OPENBLAS_")):
            cmd += ["-e", f"{var}={value}"]
    return [*cmd, DOCKER_IMAGE, str(Path(sys.executable)), "-m", "shipml.grading.worker", str(job_file)]


def run_worker(job: dict[str, Any], job_dir: Path, wall_seconds: float, sandbox: str = "none") -> WorkerRun:
    """Run one job; never raises for anything the notebook does."""
    if sandbox not in SANDBOXES:
        raise ShipmlError(f"unknown sandbox '{sandbox}' (use one of: {', '.join(SANDBOXES)})")
    job_dir.mkdir(parents=True, exist_ok=True)
    job_file = job_dir / "job.json"
    job_file.write_text(json.dumps(job, indent=1))
    container = f"shipml-grade-{uuid.uuid4().hex[:12]}"
    if sandbox == "docker":
        cmd = _docker_command(job_file, job_dir, container, job["limits"]["memory_mib"] * 2,
                              job["limits"]["nproc"])
    else:
        cmd = [sys.executable, "-m", "shipml.grading.worker", str(job_file)]
    result = WorkerRun(wall_limit=wall_seconds)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True, env=_worker_env(job_dir), cwd=job_dir)

    def read() -> None:
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                result.events.append(event)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=wall_seconds)
    except subprocess.TimeoutExpired:
        result.wall_timeout = True
        if sandbox == "docker":
            subprocess.run(["docker", "kill", container], capture_output=True, timeout=60)
        result.killed_groups = _kill_tree(proc)
        proc.wait()
    reader.join(timeout=10)
    result.returncode = proc.returncode
    result.seconds = time.monotonic() - started
    return result
