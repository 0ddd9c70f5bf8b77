"""Run one grading worker inside its sandbox under a wall clock, and collect what it reports.

The worker reports JSON lines on its stdout (see :mod:`shipml.grading.worker`); they are read as they
come, so a notebook killed halfway still gives the results of the cells that ran. Its stderr (and the
kernel's) is read into a bounded buffer and kept as ``worker.log`` in the job folder: the last line of a
failing worker ends up in the row's ``detail``. When the wall clock runs out the sandbox is killed
(``docker kill``; for bwrap and ``none`` every process group of the tree, and with bwrap the PID
namespace takes everything the submission started with it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
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

from shipml.grading.sandbox import GRADER, INPUT, JOB, OUT, Box, bwrap_command, docker_command, env

_LIVE: dict[int, tuple[subprocess.Popen, str, str]] = {}  # pid -> (process, sandbox kind, container name)
LOG_KEEP = 32 * 1024  # bytes of stderr kept from the start and from the end
CHANNEL_CAP = 64 * 1024 * 1024  # bytes of reports accepted from one worker (the executed notebook included)


@dataclass
class WorkerRun:
    events: list[dict[str, Any]] = field(default_factory=list)
    wall_timeout: bool = False
    returncode: int | None = None
    seconds: float = 0.0
    killed_groups: int = 0
    wall_limit: float = 0.0
    log_tail: str = ""  # the last non-empty line the worker or kernel wrote to stderr
    notebook: str | None = None  # the executed notebook (JSON text) when the worker sent it


class BoundedLog:
    """Keep the first and last ``LOG_KEEP`` bytes of a stream (a submission can print gigabytes)."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = LOG_KEEP - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > LOG_KEEP:
            self.dropped += len(self.tail) - LOG_KEEP
            del self.tail[: len(self.tail) - LOG_KEEP]

    def text(self) -> str:
        middle = f"\n[... {self.dropped:,} bytes dropped ...]\n".encode() if self.dropped else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode("utf-8", "replace")

    def last_line(self) -> str:
        lines = [ln.strip() for ln in self.text().splitlines() if ln.strip()]
        return lines[-1][:300] if lines else ""


def _kill_tree(proc: subprocess.Popen) -> int:
    """SIGKILL every process group of the worker's tree; return how many groups were killed."""
    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    groups = set()
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(p.pid))
    groups.discard(os.getpgid(0))  # never our own group
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    for p in tree:  # anything that left its group (setsid in student code)
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    return len(groups)


def kill_all() -> int:
    """Kill every sandbox still running (the grader is stopping); return how many there were."""
    live = list(_LIVE.values())
    for proc, kind, container in live:
        if kind == "docker":
            subprocess.run(["docker", "kill", container], capture_output=True, timeout=60)
        _kill_tree(proc)
    return len(live)


def prepare(job: dict[str, Any], job_dir: Path, box: Box) -> tuple[list[str], dict[str, Any], str]:
    """(command, job as the worker sees it, container name) for ``box``."""
    job_dir.mkdir(parents=True, exist_ok=True)
    container = f"shipml-grade-{uuid.uuid4().hex[:12]}"
    if box.kind == "none":
        inner = dict(job)
        for sub in ("scratch", "home", "tmp"):
            (job_dir / sub).mkdir(exist_ok=True)
        (job_dir / "job.json").write_text(json.dumps(inner, indent=1))
        worker = [sys.executable, str(box.grader / "worker.py")] if box.grader else \
            [sys.executable, "-m", "shipml.grading.worker"]
        return [*worker, str(job_dir / "job.json")], inner, container
    staged = job_dir / "staged"
    staged.mkdir(exist_ok=True)
    shutil.copyfile(job["input"], staged / "in.ipynb")
    inner = {**job, "input": f"{INPUT}/in.ipynb", "output": f"{OUT}/executed.ipynb", "cwd": f"{JOB}/scratch",
             "answers": f"{OUT}/{Path(job['answers']).name}",
             "mkdirs": [f"{JOB}/scratch", f"{JOB}/home", f"{JOB}/tmp", f"{OUT}/runtime"]}
    inner["parameters"] = {**job["parameters"], "answers_path": inner["answers"]}
    (staged / "job.json").write_text(json.dumps(inner, indent=1))
    for f in staged.iterdir():
        f.chmod(0o644)
    argv = [str(Path(sys.prefix) / "bin" / "python"), f"{GRADER}/worker.py", f"{INPUT}/job.json"]
    if box.kind == "bwrap":
        return bwrap_command(box, staged, argv), inner, container
    limits = job["limits"]
    return docker_command(box, staged, argv, container, limits["memory_mib"] * 2, limits["nproc"]), inner, container


def run_worker(job: dict[str, Any], job_dir: Path, wall_seconds: float, box: Box | None = None) -> WorkerRun:
    """Run one job in ``box`` (default: ``none``); never raises for anything the notebook does."""
    box = box or Box("none")
    cmd, _, container = prepare(job, job_dir, box)
    result = WorkerRun(wall_limit=wall_seconds)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, cwd=job_dir,
                            env=env(box, str(job_dir)) if box.kind == "none" else dict(os.environ))
    _LIVE[proc.pid] = (proc, box.kind, container)
    log = BoundedLog()

    def read_reports() -> None:
        received = 0
        for line in proc.stdout:
            received += len(line)
            if received > CHANNEL_CAP:
                continue
            try:
                event = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(event, dict) and event.get("event") == "notebook":
                result.notebook = event.get("text") if isinstance(event.get("text"), str) else None
            elif isinstance(event, dict):
                result.events.append(event)

    def read_log() -> None:
        for chunk in iter(lambda: proc.stderr.read1(65536), b""):
            log.add(chunk)

    readers = [threading.Thread(target=read_reports, daemon=True), threading.Thread(target=read_log, daemon=True)]
    for t in readers:
        t.start()
    try:
        proc.wait(timeout=wall_seconds)
    except subprocess.TimeoutExpired:
        result.wall_timeout = True
    finally:  # the wall clock, or the grader itself interrupted (Ctrl-C, SIGTERM): nothing may outlive it
        if proc.poll() is None:
            if box.kind == "docker":
                subprocess.run(["docker", "kill", container], capture_output=True, timeout=60)
            result.killed_groups = _kill_tree(proc)
            proc.wait()
        if box.kind == "docker":  # --rm removes it; a kill that raced the exit must not leave one behind
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)
        _LIVE.pop(proc.pid, None)
    for t in readers:
        t.join(timeout=10)
    result.returncode = proc.returncode
    result.seconds = time.monotonic() - started
    (job_dir / "worker.log").write_text(log.text())
    result.log_tail = log.last_line()
    return result
