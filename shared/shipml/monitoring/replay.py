"""Replay recorded transactions through a running model server, one ``POST /predict`` per row.

Each request carries ``X-Request-Id: <prefix><row id>``, so the prediction log's ``id`` is the
transaction's and delayed labels join by it. Async httpx over a few keep-alive connections; bounded by
the rows given; talks only to the URL it is given (use 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tqdm.auto import tqdm


@dataclass
class ReplayResult:
    answered: int
    failed: int
    seconds: float

    @property
    def rps(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0


def request_bodies(frame: pd.DataFrame, features: list[str]) -> list[bytes]:
    """One JSON record per row, with plain JSON types (numbers, text, true/false)."""
    records = frame[features].astype({c: object for c in features}).to_dict(orient="records")
    out = []
    for r in records:
        out.append(json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}).encode())
    return out


def replay(url: str, frame: pd.DataFrame, features: list[str], *, id_column: str = "id", id_prefix: str = "tx-",
           connections: int = 4, progress: bool = False, desc: str = "replay") -> ReplayResult:
    """POST every row of ``frame`` to ``url``/predict; how many were answered (200) and how long it took."""
    import httpx

    bodies = request_bodies(frame, features)
    ids = [f"{id_prefix}{v}" for v in frame[id_column].tolist()]
    target = url.rstrip("/") + "/predict"

    async def main() -> ReplayResult:
        answered = failed = 0
        position = 0
        bar = tqdm(total=len(bodies), disable=not progress, desc=desc, unit="req", mininterval=0.5)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            async def worker() -> None:
                nonlocal answered, failed, position
                while position < len(bodies):
                    i = position
                    position += 1
                    try:
                        r = await client.post(target, content=bodies[i],
                                              headers={"content-type": "application/json", "x-request-id": ids[i]})
                        ok = r.status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    answered += ok
                    failed += not ok
                    bar.update(1)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            took = time.perf_counter() - started
        bar.close()
        return ReplayResult(answered, failed, took)

    return _run(main())


def _run(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor  # inside Jupyter: a fresh loop in another thread

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
