"""Real-time inference in process: how long does *one* prediction take, and what do batches buy?

A fraud check scores one transaction while the customer waits: what matters is the latency of a single
call, and not only its median — the slow tail (p95, p99) is what some customers get. Batch scoring cares
about rows per second instead. :func:`time_single` measures the first, :func:`batch_size_sweep` shows
how throughput grows (and the latency of each call grows too) as the batch gets bigger.

Every call here validates its input first, as a real service must.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from shipml.predictor import Predictor
from shipml.timing import percentiles, time_calls


@dataclass
class LatencyStats:
    """Per-call latency in milliseconds over ``n`` calls."""

    n: int
    batch_size: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float

    @property
    def rows_per_second(self) -> float:
        return self.batch_size / (self.mean_ms / 1000) if self.mean_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}

    def __str__(self) -> str:
        return (f"{self.n} calls of {self.batch_size} row(s): p50 {self.p50_ms:.3f} ms, p95 {self.p95_ms:.3f} ms, "
                f"p99 {self.p99_ms:.3f} ms, max {self.max_ms:.3f} ms ({self.rows_per_second:,.0f} rows/s)")


def _rows(data: Any, start: int, size: int) -> dict[str, Any]:
    """Rows ``start`` … ``start+size`` of columnar data, as a dict of arrays (what an API would hand over)."""
    if hasattr(data, "iloc"):
        part = data.iloc[start:start + size]
        return {c: part[c].to_numpy() for c in part.columns}
    return {k: np.asarray(v)[start:start + size] for k, v in data.items()}


def _n_rows(data: Any) -> int:
    return len(data) if hasattr(data, "iloc") else len(next(iter(data.values())))


def time_batches(predictor: Predictor, data: Any, batch_size: int = 1, n: int = 500, warmup: int = 20,
                 time_budget_s: float | None = None) -> LatencyStats:
    """Validate + predict ``n`` times on consecutive batches of ``batch_size`` rows from ``data``."""
    total = _n_rows(data)
    if total < batch_size:
        raise ValueError(f"need at least {batch_size} rows, got {total}")
    batches = [_rows(data, (i * batch_size) % (total - batch_size + 1), batch_size) for i in range(min(n, 64))]
    samples = time_calls(lambda i: _one_call(predictor, batches[i % len(batches)]), n, warmup=warmup,
                         budget_s=time_budget_s)
    p50, p95, p99 = percentiles(samples)
    return LatencyStats(len(samples), batch_size, p50, p95, p99, float(np.mean(samples)), float(np.max(samples)))


def _one_call(predictor: Predictor, rows: dict[str, Any]) -> np.ndarray:
    validation = predictor.validate(rows)
    validation.raise_if_invalid()
    return predictor.predict_proba(validation.columns)


def time_single(predictor: Predictor, data: Any, n: int = 500, warmup: int = 20) -> LatencyStats:
    """Latency of scoring one row at a time (the real-time case)."""
    return time_batches(predictor, data, batch_size=1, n=n, warmup=warmup)


def batch_size_sweep(predictor: Predictor, data: Any, sizes: Sequence[int] = (1, 10, 100, 1_000, 10_000, 100_000),
                     time_budget_s: float = 2.0, progress: bool = True) -> list[LatencyStats]:
    """Latency per call and rows/s for growing batch sizes (each size gets about ``time_budget_s``)."""
    from tqdm.auto import tqdm

    total = _n_rows(data)
    usable = [s for s in sizes if s <= total]
    out = []
    for size in tqdm(usable, desc="batch sizes", disable=not progress):
        out.append(time_batches(predictor, data, batch_size=size, n=10_000, warmup=min(5, 1 + 10_000 // size),
                              time_budget_s=time_budget_s))
    return out


def plot_sweep(stats: Sequence[LatencyStats], ax: Any = None) -> Any:
    """Latency per call (left axis) and rows/s (right axis) against batch size, both on log scales."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    sizes = [s.batch_size for s in stats]
    ax.plot(sizes, [s.p50_ms for s in stats], "o-", color="tab:blue", label="latency p50 (ms per call)")
    ax.plot(sizes, [s.p99_ms for s in stats], "o--", color="tab:blue", alpha=0.5, label="latency p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows per call (batch size)")
    ax.set_ylabel("latency per call (ms)", color="tab:blue")
    right = ax.twinx()
    right.plot(sizes, [s.rows_per_second for s in stats], "s-", color="tab:red", label="throughput")
    right.set_yscale("log")
    right.set_ylabel("throughput (rows/s)", color="tab:red")
    ax.set_title("one row now, or many rows fast: latency vs throughput")
    lines = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    ax.legend(lines, labels, loc="upper left", fontsize=8)
    return ax
