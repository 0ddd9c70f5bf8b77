"""What the model server exports to Prometheus about its predictions: the score histogram and drift gauges.

Computed in the prediction log's writer thread, never in a request: each served model version keeps a
rolling window of its last ``window_rows`` logged rows; every ``every_seconds`` (once the window holds
``min_rows``) drift is computed against the bundle's reference profile and the gauges are set:

=====================================================  =====================================================
metric                                                 meaning
=====================================================  =====================================================
``shipml_prediction_score`` (histogram)                positive-class probability of logged predictions
``shipml_feature_psi{feature=...}``                    PSI of each feature and of ``score`` in the window
``shipml_feature_drift{feature=...}``                  1 when the feature is flagged as drifted (see drift)
``shipml_drift_window_rows``                           rows in the window the gauges describe
``shipml_drift_reference``                             1 when the bundle has a reference profile, else 0
``shipml_prediction_log_rows_total``                   rows the log wrote (or handed to the gauges)
``shipml_prediction_log_dropped_total``                rows dropped because the log's queue was full
=====================================================  =====================================================
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shipml.errors import ShipmlError
from shipml.monitoring.drift import DEFAULT_ALPHA, DEFAULT_MIN_PSI, detect_drift
from shipml.monitoring.reference import ReferenceProfile

log = logging.getLogger("shipml.monitoring")

SCORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


class LiveMetrics:
    """The monitoring metrics of one app, registered in the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.score = Histogram("shipml_prediction_score", "Positive-class probability of logged predictions",
                               ["model", "version"], buckets=SCORE_BUCKETS, registry=registry)
        self.psi = Gauge("shipml_feature_psi", "PSI of a feature (or the score) in the rolling window",
                         ["model", "version", "feature"], registry=registry, multiprocess_mode="livemax")
        self.drift = Gauge("shipml_feature_drift", "1 when the feature drifted in the rolling window",
                           ["model", "version", "feature"], registry=registry, multiprocess_mode="livemax")
        self.window_rows = Gauge("shipml_drift_window_rows", "Rows in the rolling drift window",
                                 ["model", "version"], registry=registry, multiprocess_mode="livemax")
        self.has_reference = Gauge("shipml_drift_reference", "1 when the model's bundle has a reference profile",
                                   ["model", "version"], registry=registry, multiprocess_mode="livemax")
        self.logged = Counter("shipml_prediction_log_rows", "Rows written by the prediction log", registry=registry)
        self.dropped = Counter("shipml_prediction_log_dropped", "Rows dropped by the prediction log (queue full)",
                               registry=registry)


class _Window:
    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.parts: deque[dict[str, np.ndarray]] = deque()
        self.n = 0

    def add(self, columns: dict[str, np.ndarray]) -> None:
        self.parts.append(columns)
        self.n += len(columns["score"])
        while self.parts and self.n - len(self.parts[0]["score"]) >= self.rows:
            self.n -= len(self.parts.popleft()["score"])

    def frame(self) -> dict[str, np.ndarray]:
        keys = self.parts[0].keys()
        out = {k: np.concatenate([p[k] for p in self.parts]) for k in keys}
        return {k: v[-self.rows:] for k, v in out.items()}


class LiveDrift:
    """An observer of the prediction log that keeps the drift gauges current."""

    def __init__(self, metrics: LiveMetrics, reference_of: Callable[[str, int], ReferenceProfile | None], *,
                 window_rows: int = 5000, min_rows: int = 500, every_seconds: float = 5.0,
                 alpha: float = DEFAULT_ALPHA, min_psi: float = DEFAULT_MIN_PSI) -> None:
        self.metrics = metrics
        self.reference_of = reference_of
        self.window_rows = window_rows
        self.min_rows = min_rows
        self.every_seconds = every_seconds
        self.alpha = alpha
        self.min_psi = min_psi
        self._windows: dict[tuple[str, int], _Window] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._refs: dict[tuple[str, int], ReferenceProfile | None] = {}

    def __call__(self, model: str, version: int, columns: dict[str, np.ndarray]) -> None:
        key, v = (model, version), str(version)
        hist = self.metrics.score.labels(model, v)
        for s in columns["score"].tolist():
            hist.observe(s)
        if key not in self._refs:
            try:
                self._refs[key] = self.reference_of(model, version)
            except ShipmlError as exc:
                log.warning("no live drift for this model", extra={"model": model, "version": version,
                                                                   "error": str(exc)})
                self._refs[key] = None
            self.metrics.has_reference.labels(model, v).set(1 if self._refs[key] is not None else 0)
        reference = self._refs[key]
        if reference is None:
            return
        window = self._windows.setdefault(key, _Window(self.window_rows))
        window.add({k: columns[k] for k in (*reference.features, "score")})
        now = time.monotonic()
        if window.n < self.min_rows or now - self._last.get(key, 0.0) < self.every_seconds:
            return
        self._last[key] = now
        result = detect_drift(reference, window.frame(), alpha=self.alpha, min_psi=self.min_psi,
                              min_rows=self.min_rows)
        for f in result.features:
            self.metrics.psi.labels(model, v, f.feature).set(f.psi)
            self.metrics.drift.labels(model, v, f.feature).set(1 if f.drifted else 0)
        self.metrics.window_rows.labels(model, v).set(result.rows)

    def forget(self, model: str, version: int) -> None:
        """Drop a model version's window (it was unloaded or replaced)."""
        self._windows.pop((model, version), None)
        self._refs.pop((model, version), None)


