"""A small async load generator (httpx): N requests over C connections, latencies recorded.

For the notebook's short load test and the benchmark's fallback when ``wrk`` is not installed. It
only targets the URL it is given (use 127.0.0.1) and stops after ``requests`` requests.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class LoadResult:
    latencies_ms: np.ndarray
    seconds: float
    failures: int

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentiles(self, qs: tuple[float, ...] = (50, 90, 99)) -> dict[str, float]:
        return {f"p{q:g}": float(np.percentile(self.latencies_ms, q)) for q in qs}


def run_load(url: str, body: bytes | dict, requests: int = 2000, connections: int = 8,
             headers: dict[str, str] | None = None) -> LoadResult:
    """POST ``body`` to ``url`` ``requests`` times over ``connections`` keep-alive connections."""
    import json

    import httpx

    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"content-type": "application/json", **(headers or {})}

    async def main() -> LoadResult:
        latencies: list[float] = []
        failures = 0
        left = requests
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            async def worker() -> None:
                nonlocal failures, left
                while left > 0:
                    left -= 1
                    t = time.perf_counter()
                    try:
                        ok = (await client.post(url, content=payload, headers=hdrs)).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    latencies.append((time.perf_counter() - t) * 1000)
                    failures += not ok

            for _ in range(min(50, requests)):  # warm-up: open the connections, fill the caches
                await client.post(url, content=payload, headers=hdrs)
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            took = time.perf_counter() - started
        return LoadResult(np.asarray(latencies), took, failures)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    # Inside Jupyter an event loop is already running in this thread: use a fresh one in another.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()
