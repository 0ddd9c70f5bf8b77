"""What a load test found, one type for the whole kit.

The API's load generator (``shipml.serving.loadtest``: how fast, how slow at p99) and the cluster's
(``shipml.cluster.loadgen``: how many requests failed while pods were replaced) report the same
thing: requests sent, how many failed and why, over how many seconds, and — when timed — each
request's latency.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    """Requests ``sent`` in ``seconds``; ``failed`` of them non-2xx or unanswered (``reasons`` counts why)."""

    sent: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies_ms: np.ndarray = field(default_factory=lambda: np.empty(0))
    reasons: Counter = field(default_factory=Counter)

    @property
    def failures(self) -> int:
        return self.failed

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def failure_rate(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    def percentiles(self, qs: tuple[float, ...] = (50, 90, 99)) -> dict[str, float]:
        """Latency percentiles in ms, ``{"p50": ..., "p90": ..., "p99": ...}``."""
        if not len(self.latencies_ms):
            raise ValueError("this load result has no latencies")
        return {f"p{q:g}": float(np.percentile(self.latencies_ms, q)) for q in qs}

    def __str__(self) -> str:
        why = ", ".join(f"{reason} x{n}" for reason, n in self.reasons.most_common(3))
        return (f"{self.sent} requests in {self.seconds:.1f} s, {self.failed} failed"
                + (f" ({why})" if why else ""))
