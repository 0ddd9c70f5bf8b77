"""Prometheus metrics of one app: requests by route and status, latency, predictions, loaded versions.

Each app has its own :class:`prometheus_client.CollectorRegistry` (no module-level metrics), so two
apps in one process (tests, a notebook) never mix their counts. With several worker processes
(``shipml serve --workers N``) the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` to a folder under /tmp and
``/metrics`` adds up every worker's numbers (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: fine steps below 5 ms, where a lean model server lives.
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)


def multiprocess_dir() -> str | None:
    """The folder worker processes share their metrics through (``shipml serve --workers N``), if any."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def worker_stopped() -> None:
    """A worker is stopping: drop its live gauges (``shipml_model_loaded``) from the shared folder."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


class Metrics:
    """The server's metrics; label children are cached so the hot path is two dict look-ups."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("shipml_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("shipml_request_duration_seconds", "Time to answer a request, by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.predictions = Counter("shipml_predictions", "Predicted rows by model, version and predicted class",
                                   ["model", "version", "class_name"], registry=self.registry)
        self.loaded = Gauge("shipml_model_loaded", "1 for every model version being served",
                            ["model", "version", "backend"], registry=self.registry, multiprocess_mode="livemax")
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self._class_children: dict[tuple[str, int], list[Any]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(route, method, str(status))
        child.inc()
        hist = self._latency_children.get(route)
        if hist is None:
            hist = self._latency_children[route] = self.latency.labels(route)
        hist.observe(seconds)

    def count_predictions(self, model: str, version: int, class_names: list[str], class_index: Sequence[int]) -> None:
        """Count predicted rows by class (``class_index``: the predicted class of each row)."""
        key = (model, version)
        children = self._class_children.get(key)
        if children is None:
            children = self._class_children[key] = [
                self.predictions.labels(model, str(version), c) for c in class_names]
        if len(class_index) == 1:
            children[int(class_index[0])].inc()
            return
        for i, n in enumerate(np.bincount(np.asarray(class_index, dtype=np.intp), minlength=len(children))):
            if n:
                children[i].inc(int(n))

    def models_changed(self, added: list[Any], removed: list[Any]) -> None:
        """Keep ``shipml_model_loaded`` true to what is served (0 for an unloaded version with workers)."""
        for m in removed:
            if multiprocess_dir():  # other workers' files hold the series: mark it, it cannot be removed
                self.loaded.labels(m.name, str(m.version), m.backend).set(0)
                continue
            with contextlib.suppress(KeyError):
                self.loaded.remove(m.name, str(m.version), m.backend)
        for m in added:
            self.loaded.labels(m.name, str(m.version), m.backend).set(1)

    def render(self) -> bytes:
        if multiprocess_dir():
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
