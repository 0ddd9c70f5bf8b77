"""The one place the model server hands a completed prediction to monitoring.

:func:`build_monitor` makes a :class:`ServingMonitor` from :class:`~shipml.settings.Settings` (``None`` when
``SHIPML_MONITOR`` is off, so the routes pay one attribute check); the predict routes call
:meth:`ServingMonitor.record_one` / :meth:`ServingMonitor.record_batch` after answering. Everything slow
(columns, Parquet, drift) happens in the prediction log's writer thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shipml.monitoring.reference import ReferenceProfile, load_reference
from shipml.schema import FeatureSchema


class ServingMonitor:
    """The server's prediction log plus the live drift gauges."""

    def __init__(self, log_dir: str | Path | None, registry: Any, *, sample_rate: float = 1.0,
                 queue_rows: int = 100_000, rotate_bytes: int = 64 << 20, rotate_seconds: float = 300.0,
                 window_rows: int = 5000, drift_seconds: float = 5.0, flush_seconds: float = 0.25,
                 resolve: Any = None) -> None:
        """``resolve(model, version)`` finds a served model (its schema and bundle path); without it, the models
        seen by :meth:`record_one` / :meth:`record_batch` are remembered."""
        # imported here: scipy and pyarrow are needed only when monitoring is on (the ONNX image has neither)
        from shipml.monitoring.live import LiveDrift, LiveMetrics
        from shipml.monitoring.predlog import PredictionLog

        self._models: dict[tuple[str, int], Any] = {}
        self._resolve = resolve
        self.metrics = LiveMetrics(registry)
        self.drift = LiveDrift(self.metrics, self._reference, window_rows=window_rows,
                               min_rows=min(500, window_rows), every_seconds=drift_seconds)
        self.log = PredictionLog(log_dir, self._schema, sample_rate=sample_rate, queue_rows=queue_rows,
                                 rotate_bytes=rotate_bytes, rotate_seconds=rotate_seconds,
                                 flush_seconds=flush_seconds, on_written=self.metrics.logged.inc,
                                 on_dropped=self.metrics.dropped.inc, observers=[self.drift])

    def _served(self, model: str, version: int) -> Any:
        return self._resolve(model, version) if self._resolve is not None else self._models[(model, version)]

    def _schema(self, model: str, version: int) -> FeatureSchema:
        return self._served(model, version).predictor.schema

    def _reference(self, model: str, version: int) -> ReferenceProfile | None:
        return load_reference(self._served(model, version).predictor.path)

    def _seen(self, served: Any) -> None:
        key = (served.name, served.version)
        if self._models.get(key) is not served:
            if key in self._models:
                self.drift.forget(*key)
            self._models[key] = served

    def record_one(self, served: Any, request_id: str, row: dict[str, Any], proba: list[float], index: int) -> None:
        """After ``/predict`` answered ``row`` with ``proba`` (one per class) and class ``index``."""
        if self._models.get((served.name, served.version)) is not served:
            self._seen(served)
        self.log.record_one(request_id, served.name, served.version, row, proba[-1], served.class_labels[index])

    def record_batch(self, served: Any, request_id: str, columns: dict[str, Any], proba: np.ndarray,
                     index: np.ndarray) -> None:
        """After a batch route answered ``columns`` (rows x classes ``proba``, class ``index`` per row)."""
        if self._models.get((served.name, served.version)) is not served:
            self._seen(served)
        n = len(index)
        ids = [f"{request_id}:{i}" for i in range(n)]
        labels = np.asarray(served.class_labels)[np.asarray(index)]
        self.log.record_columns(ids, served.name, served.version, columns, np.asarray(proba)[:, -1], labels)

    def close(self) -> None:
        self.log.close()


def _options(settings: Any) -> dict[str, Any]:
    return {"sample_rate": settings.monitor_sample_rate, "queue_rows": settings.monitor_queue_rows,
            "rotate_bytes": int(settings.monitor_rotate_mb * (1 << 20)),
            "rotate_seconds": settings.monitor_rotate_seconds, "window_rows": settings.monitor_window_rows,
            "drift_seconds": settings.monitor_drift_seconds}


def build_monitor(settings: Any, registry: Any) -> ServingMonitor | None:
    """The server's monitor from its settings, or None when monitoring is off."""
    if not getattr(settings, "monitor", False):
        return None
    return ServingMonitor(settings.monitor_log_dir, registry, **_options(settings))


class MonitoringExtension:
    """The same monitor as a server extension (``shipml.serving.hooks``): started and stopped by the lifespan,
    fed by ``on_prediction`` on every prediction route."""

    name = "monitoring"

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.monitor: ServingMonitor | None = None

    async def startup(self, app: Any) -> None:
        repo = app.state.repository
        self.monitor = ServingMonitor(self.settings.monitor_log_dir, app.state.metrics.registry,
                                      resolve=lambda model, version: repo.get(model, version),
                                      **_options(self.settings))

    async def shutdown(self, app: Any) -> None:
        import asyncio

        if self.monitor is not None:
            monitor, self.monitor = self.monitor, None
            await asyncio.to_thread(monitor.close)

    def on_prediction(self, event: Any) -> None:
        monitor = self.monitor
        if monitor is None:
            return
        n = len(event.labels)
        ids = [event.request_id] if n == 1 else [f"{event.request_id}:{i}" for i in range(n)]
        monitor.log.record_columns(ids, event.model, event.version, event.features, event.scores[:, -1],
                                   event.labels)
