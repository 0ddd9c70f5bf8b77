"""Time a call many times, one way for the whole kit.

Latency is a distribution, not a number: the median says what most calls cost, p99 what the slowest
customer gets. :func:`time_calls` warms up (first calls pay for caches and lazy initialisation), then
times each call with ``perf_counter_ns`` and returns the samples in milliseconds; :func:`percentiles`
turns samples into p50/p95/p99. ``shipml.realtime``, ``shipml.edge``, the benchmarks and notebook 05 use it.

A figure means little without where it was measured: every benchmark takes a :class:`Measurement` when it
starts (git commit, date, machine, load average) and writes its figures with :meth:`Measurement.write`, which
adds the load average at the end and writes the JSON (and a Markdown table) in one way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
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


def _load_average() -> list[float]:
    import os

    return [round(x, 2) for x in os.getloadavg()]


class Measurement:
    """One benchmark run: its :func:`measurement_context` taken at the start (the code that runs is the code
    at the start), closed at the end with the load average then; written next to the figures."""

    def __init__(self) -> None:
        self.context = measurement_context()

    def finished(self) -> dict[str, Any]:
        """The start's context plus when the run ended and the load average then (1, 5 and 15 minutes)."""
        from datetime import UTC, datetime

        return {**self.context, "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "load_average_after": _load_average()}

    def write(self, figures: dict[str, Any], json_path: Path | None, *,
              markdown: Callable[[dict[str, Any]], str] | None = None, md_path: Path | None = None) -> dict[str, Any]:
        """``figures`` with ``"context"`` (:meth:`finished`), written as JSON to ``json_path`` when given, and
        ``markdown(document)`` to ``md_path`` (default: beside the JSON, ``.md``). Returns the document."""
        document = {**figures, "context": self.finished()}
        write_results(document, json_path, markdown=markdown(document) if markdown else None, md_path=md_path)
        return document


def write_results(document: dict[str, Any], json_path: Path | None, *, markdown: str | None = None,
                  md_path: Path | None = None) -> list[Path]:
    """Write ``document`` as indented JSON to ``json_path`` (values JSON has no type for as text) and
    ``markdown`` to ``md_path`` or beside the JSON; folders are made. Returns the files written."""
    import json

    written = []
    if json_path is not None:
        json_path = Path(json_path)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        written.append(json_path)
    md_path = Path(md_path) if md_path else json_path.with_suffix(".md") if json_path else None
    if markdown is not None and md_path is not None:
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(markdown)
        written.append(md_path)
    return written


def describe(context: dict[str, Any]) -> str:
    """One sentence for a results table: commit, date, machine and load average (start and, if known, end)."""
    def load(values: Sequence[float]) -> str:
        return " / ".join(f"{x:.2f}" for x in values)

    dirty = " with uncommitted changes" if context.get("uncommitted_changes") else ""
    after = context.get("load_average_after")
    return (f"Commit {context['commit']}{dirty}, measured {context['measured_at']} on {context['machine']}; "
            f"load average {load(context['load_average'])} at the start"
            + (f", {load(after)} at the end" if after else "") + ".")
