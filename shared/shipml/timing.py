"""Time a call many times, one way for the whole kit.

Latency is a distribution, not a number: the median says what most calls cost, p99 what the slowest
customer gets. :func:`time_calls` warms up (first calls pay for caches and lazy initialisation), then
times each call with ``perf_counter_ns`` and returns the samples in milliseconds; :func:`percentiles`
turns samples into p50/p95/p99. ``shipml.realtime``, ``shipml.edge``, the benchmarks and notebook 05 use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def time_calls(call: Callable[[int], Any], n: int, warmup: int = 20, budget_s: float | None = None,
               min_calls: int = 5) -> np.ndarray:
    """Milliseconds each of ``n`` calls of ``call(i)`` took, after ``warmup`` untimed calls.

    With ``budget_s`` the loop stops early once that much time has passed and ``min_calls`` are in.
    """
    for i in range(warmup):
        call(i)
    samples = np.empty(n, dtype=np.float64)
    deadline = time.perf_counter() + budget_s if budget_s else None
    done = 0
    for i in range(n):
        started = time.perf_counter_ns()
        call(i)
        samples[i] = (time.perf_counter_ns() - started) / 1e6
        done = i + 1
        if deadline is not None and done >= min_calls and time.perf_counter() > deadline:
            break
    return samples[:done]


def percentiles(samples_ms: Sequence[float] | np.ndarray, which: Sequence[float] = (50, 95, 99)) -> list[float]:
    """Percentiles of ``samples_ms`` by linear interpolation between closest ranks (numpy's default)."""
    samples = np.asarray(samples_ms, dtype=np.float64)
    if samples.size == 0:
        raise ValueError("no samples")
    return [float(v) for v in np.percentile(samples, which)]


def best_of(call: Callable[[], Any], repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs of ``call()`` in seconds (for throughput: noise only adds time)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def measurement_context() -> dict[str, Any]:
    """Where and on what a figure was measured: the git commit (and whether the tree had changes),
    the machine, and its load average — a benchmark's JSON carries it next to the figures."""
    import os
    import platform
    import subprocess
    from datetime import UTC, datetime

    from shipml.paths import PACKAGE_DIR

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {
        "commit": git("rev-parse", "--short=12", "HEAD") or "unknown",
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],  # 1, 5 and 15 minutes, at the time of the call
    }
