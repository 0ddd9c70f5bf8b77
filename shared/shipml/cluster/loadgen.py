"""A small, bounded load generator: counts failed requests while the cluster changes.

Bounded on purpose (a request count and a time limit) and restricted to loopback addresses or the
cluster URL the caller passes, so it can only ever load the student's own service.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from urllib.parse import urlsplit

import httpx

from shipml.errors import ShipmlError
from shipml.load import LoadResult

__all__ = ["LoadGenerator", "LoadResult", "check_target"]


def check_target(url: str, cluster_url: str | None = None) -> None:
    """Only loopback or the cluster's own URL may be loaded."""
    host = urlsplit(url).hostname or ""
    if cluster_url is not None and host == urlsplit(cluster_url).hostname:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ShipmlError(f"refusing to load {host!r}: only localhost or the cluster URL")


class LoadGenerator:
    """Sends requests from a background thread until stopped, `max_requests` or `max_seconds`.

    with LoadGenerator("http://localhost:30080/v2/health/ready") as load:
        ...  # change the cluster
    print(load.result)
    """

    def __init__(self, url: str, *, max_requests: int = 5000, max_seconds: float = 120,
                 cluster_url: str | None = None, timeout: float = 2.0) -> None:
        check_target(url, cluster_url)
        self.url, self.max_requests, self.max_seconds = url, max_requests, max_seconds
        self.timeout = timeout
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        with httpx.Client(timeout=self.timeout) as client:
            while (not self._stop.is_set() and self.result.sent < self.max_requests
                   and time.perf_counter() - started < self.max_seconds):
                self.result.sent += 1
                try:
                    status = client.get(self.url).status_code
                    if not 200 <= status < 300:
                        self.result.failed += 1
                        self.result.reasons[f"HTTP {status}"] += 1
                except httpx.HTTPError as exc:
                    self.result.failed += 1
                    self.result.reasons[type(exc).__name__] += 1
                self.result.seconds = time.perf_counter() - started

    def __enter__(self) -> LoadGenerator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
