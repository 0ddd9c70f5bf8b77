"""Which of the recorded processes are still ours: shared by the control plane and the real node."""

from __future__ import annotations

import psutil

from shipml.cluster.controlplane import versions


def own_process(name: str, pid: int, exe: str | None = None) -> psutil.Process | None:
    """The process `pid` if it still runs our `name` binary (pids get reused). Checks the
    executable too: right after exec, /proc/<pid>/cmdline can briefly be empty."""
    expected = exe or str(versions.bin_dir() / name)
    if pid <= 0:  # never started (a failed start leaves no pid)
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        exe = process.exe().removesuffix(" (deleted)")  # a rebuild may have replaced the file
        return process if expected in (exe, *process.cmdline()[:1]) else None
    except psutil.Error:
        return None
