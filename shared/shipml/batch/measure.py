"""Time a command and its peak memory in its own process, so one approach's memory is not another's."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str

    def __str__(self) -> str:
        return f"{self.seconds:.2f} s, peak RSS {self.peak_rss_mb:,.0f} MB (exit {self.returncode})"


def measure_command(argv: list[str], timeout: float = 3600) -> Measured:
    """Run ``argv``; return wall time, the child's peak RSS (from ``wait4``) and its combined output."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = started + timeout
    chunks = []
    assert proc.stdout is not None
    for line in proc.stdout:  # read as it comes, so a chatty child never blocks on a full pipe
        chunks.append(line)
        if time.perf_counter() > deadline:
            proc.kill()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(time.perf_counter() - started, usage.ru_maxrss / 1024, proc.returncode, "".join(chunks))
