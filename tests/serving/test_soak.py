"""Soak: 20,000 requests of every kind against one server: zero failures, memory flat (RSS growth <= 10 %)."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
from serving_data import RECORD
from shipml.serving import BackgroundServer

pytestmark = pytest.mark.slow

TOTAL, WARMUP, CONCURRENCY = 20_000, 2_000, 8
V2 = {"inputs": [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else
                  "BOOL" if isinstance(v, bool) else "INT64" if isinstance(v, int) else "FP64", "data": [v]}
                 for k, v in RECORD.items()]}
# (method, path, json body, expected status): a realistic mix, including clients' mistakes.
MIX = [("POST", "/predict", RECORD, 200)] * 6 + [
    ("POST", "/predict/batch", {"records": [RECORD] * 10}, 200),
    ("POST", "/predict", {**RECORD, "amount": -5}, 422),
    ("POST", "/v2/models/fraud-onnx/infer", V2, 200),
    ("POST", "/v1/models/fraud-onnx:predict", {"instances": [RECORD, RECORD]}, 200),
    ("GET", "/v2/health/ready", None, 200),
]


async def _drive(url: str, n: int, offset: int) -> list[str]:
    failures: list[str] = []
    jobs = itertools.islice(itertools.cycle(MIX), offset, offset + n)
    lock = asyncio.Lock()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        async def worker() -> None:
            while True:
                async with lock:
                    job = next(jobs, None)
                if job is None:
                    return
                method, path, body, status = job
                try:
                    r = await client.request(method, path, json=body)
                    if r.status_code != status:
                        failures.append(f"{method} {path}: {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    failures.append(f"{method} {path}: {type(exc).__name__}: {exc}")

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return failures


def test_soak_20000_requests_no_failure_no_leak(model_repo):
    with BackgroundServer(model_repo, env={"SHIPML_DEFAULT_MODEL": "fraud-onnx"}) as server:
        assert not asyncio.run(_drive(server.url, WARMUP, 0))
        rss_start = server.rss_bytes()
        failures = asyncio.run(_drive(server.url, TOTAL, WARMUP))
        rss_end = server.rss_bytes()
        metrics = httpx.get(f"{server.url}/metrics").text
    assert failures == [], f"{len(failures)} failures, first: {failures[:3]}"
    growth = rss_end / rss_start - 1
    assert growth <= 0.10, f"RSS grew {growth:.1%} ({rss_start / 2**20:.0f} -> {rss_end / 2**20:.0f} MiB)"
    predicted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                    if line.startswith("shipml_requests_total{"))
    assert predicted >= TOTAL + WARMUP
