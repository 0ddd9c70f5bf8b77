"""Request-rate limiting per API key (or per client address on an open server): a token bucket.

Each caller has a bucket of ``burst`` tokens that refills at ``rate`` per second; a request takes one,
and a caller with an empty bucket gets ``429 Too Many Requests`` with ``Retry-After`` (whole seconds
until a token is back). It is per worker process and in memory: with N workers a caller gets up to N
times the rate, which the docs say; a shared limit needs a shared store (Redis), not worth it here.
A dict lookup and a few float operations per request: its cost is measured by
``benchmarks/bench_security.py``. (The ``limits`` library offers the same with more storage back-ends;
this is the few lines a course can read.)
"""

from __future__ import annotations

import math
import time


class RateLimiter:
    """``allow(caller)`` → 0.0 when the request may go on, else the seconds until it may."""

    def __init__(self, rate: float, burst: int | None = None, max_callers: int = 10_000) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 (turn limiting off by not making a limiter)")
        self.rate = float(rate)
        self.burst = float(burst if burst else max(1, math.ceil(rate)))
        self.max_callers = max_callers
        self._buckets: dict[str, list[float]] = {}  # caller -> [tokens, last time]

    def allow(self, caller: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= self.max_callers:  # many addresses: forget the idle ones
                self._buckets = {k: b for k, b in self._buckets.items() if now - b[1] < self.burst / self.rate}
            bucket = self._buckets[caller] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(seconds: float) -> str:
        """The ``Retry-After`` header value: whole seconds, at least 1."""
        return str(max(1, math.ceil(seconds)))
