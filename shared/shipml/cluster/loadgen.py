"""A small, bounded load generator: counts failed requests while the cluster changes.

Bounded on purpose (a request count, a time limit, optionally a rate) and restricted to loopback
addresses, the cluster URL the caller passes, or addresses inside the cluster's own pod and Service
ranges (networks this machine made), so it can only ever load the student's own service. It can
POST a JSON body (the real `/predict` with its API key) and records, per request, when it was sent,
its status and the model version that answered: the moment traffic switches is in `samples`.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from shipml.errors import ShipmlError
from shipml.load import LoadResult

__all__ = ["LoadGenerator", "LoadResult", "Sample", "check_target"]


def check_target(url: str, cluster_url: str | None = None, networks: tuple[str, ...] = ()) -> None:
    """Only loopback, the cluster's own URL, or an address in `networks` (the cluster's pod and
    Service ranges) may be loaded."""
    host = urlsplit(url).hostname or ""
    if cluster_url is not None and host == urlsplit(cluster_url).hostname:
        return
    try:
        address = ipaddress.ip_address(host) if host != "localhost" else ipaddress.ip_address("127.0.0.1")
    except ValueError:
        address = None
    allowed = address is not None and (
        address.is_loopback or any(address in ipaddress.ip_network(net) for net in networks))
    if not allowed:
        raise ShipmlError(f"refusing to load {host!r}: only localhost, the cluster URL or the "
                          "cluster's own pod/Service addresses")


@dataclass
class Sample:
    """One request: seconds since the load started, HTTP status (0: no answer), model version."""

    t: float
    status: int
    version: int | None = None


class LoadGenerator:
    """Sends requests from a background thread until stopped, `max_requests` or `max_seconds`.

    with LoadGenerator("http://localhost:30080/v2/health/ready") as load:
        ...  # change the cluster
    print(load.result)
    """

    def __init__(self, url: str, *, max_requests: int = 5000, max_seconds: float = 120,
                 cluster_url: str | None = None, timeout: float = 2.0,
                 json_bodies: list[dict] | None = None, headers: dict[str, str] | None = None,
                 networks: tuple[str, ...] = (), workers: int = 1, max_rps: float | None = None,
                 keep_alive: bool = True) -> None:
        check_target(url, cluster_url, networks)
        if workers < 1 or workers > 16:
            raise ShipmlError(f"workers must be 1-16, got {workers}")
        self.url, self.max_requests, self.max_seconds = url, max_requests, max_seconds
        self.timeout = timeout
        self.bodies = json_bodies
        # keep_alive=False: a new connection per request, so each one is routed afresh by the
        # Service (a kept-alive connection stays on its pod until that pod closes it).
        self.headers = {**(headers or {}), **({} if keep_alive else {"Connection": "close"})}
        self.interval = workers / max_rps if max_rps else 0.0
        self.result = LoadResult()
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(workers)]
        self._started = 0.0

    def _claim(self) -> int | None:
        """The next request's number, or None when a bound is reached."""
        with self._lock:
            if (self._stop.is_set() or self.result.sent >= self.max_requests
                    or time.perf_counter() - self._started >= self.max_seconds):
                return None
            self.result.sent += 1
            return self.result.sent

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=self.timeout, headers=self.headers) as client:
            while (number := self._claim()) is not None:
                sent_at = time.perf_counter()
                status, version, reason = 0, None, None
                try:
                    if self.bodies is None:
                        response = client.get(self.url)
                    else:
                        response = client.post(self.url, json=self.bodies[number % len(self.bodies)])
                    status = response.status_code
                    if 200 <= status < 300 and self.bodies is not None:
                        version = response.json().get("version")
                    elif not 200 <= status < 300:
                        reason = f"HTTP {status}"
                except (httpx.HTTPError, ValueError) as exc:
                    reason = type(exc).__name__
                with self._lock:
                    if reason:
                        self.result.failed += 1
                        self.result.reasons[reason] += 1
                    self.samples.append(Sample(sent_at - self._started, status, version))
                    self.result.seconds = time.perf_counter() - self._started
                pause = self.interval - (time.perf_counter() - sent_at)
                if pause > 0:
                    self._stop.wait(pause)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every worker reached a bound (requests or seconds)."""
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self) -> LoadGenerator:
        self._started = time.perf_counter()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
