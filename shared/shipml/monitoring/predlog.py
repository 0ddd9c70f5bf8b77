"""The prediction log: every answered prediction (or a sample) as a row of rotated Parquet files.

Off the hot path, by design: a request only appends a tuple to a bounded in-memory queue (about a
microsecond) and goes on. A writer thread drains the queue every ``flush_seconds``, turns the records
into columns, hands them to the observers (the live drift gauges) and appends them to the current
Parquet file of that model version. When the disk (or anything behind it) is too slow and the queue is
full, the server **drops** the record and counts it (``dropped``, and the ``shipml_prediction_log_dropped``
metric): a request never waits for the log. A batch job passes ``block=True`` instead and waits, losing
nothing (it has no client waiting).

Files: ``<dir>/<model>-v<version>-<UTC time>-<pid>-<n>.parquet``, written as ``.partial`` and renamed when
complete: a new file starts after ``rotate_bytes`` or ``rotate_seconds``, and :meth:`PredictionLog.close`
completes the last one, so readers only ever see whole files. Columns: ``id`` (request id; ``<id>:<row>``
for rows of a batch request), ``time`` (UTC), ``model``, ``model_version``, every feature, ``score``
(probability of the positive class) and ``prediction`` (the label answered).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shipml.schema import FeatureSchema

log = logging.getLogger("shipml.monitoring")

Observer = Callable[[str, int, dict[str, np.ndarray]], None]  # (model, version, columns incl. score)


@dataclass
class LogStats:
    """What the log did: ``accepted == written + dropped + queued`` (sampled-out records are not accepted)."""

    accepted: int = 0
    written: int = 0
    dropped: int = 0
    sampled_out: int = 0
    files: list[str] = field(default_factory=list)


class _File:
    """One open Parquet file of one model version."""

    def __init__(self, directory: Path, model: str, version: int, schema: Any, seq: int) -> None:
        import pyarrow.parquet as pq

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model)
        self.path = directory / f"{safe}-v{version}-{stamp}-{os.getpid()}-{seq}.parquet"
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.sink = open(self.partial, "wb")  # noqa: SIM115 - closed by close()
        self.writer = pq.ParquetWriter(self.sink, schema, compression="snappy")
        self.opened = time.monotonic()
        self.rows = 0

    def size(self) -> int:
        return self.sink.tell()

    def close(self) -> Path:
        self.writer.close()
        self.sink.close()
        self.partial.replace(self.path)
        return self.path


class PredictionLog:
    """A bounded queue and a writer thread; ``directory=None`` feeds only the observers (no files)."""

    def __init__(self, directory: str | Path | None, schemas: Callable[[str, int], FeatureSchema] | FeatureSchema, *,
                 sample_rate: float = 1.0, queue_rows: int = 100_000, rotate_bytes: int = 64 << 20,
                 rotate_seconds: float = 300.0, flush_seconds: float = 0.25,
                 on_written: Callable[[int], None] | None = None, on_dropped: Callable[[int], None] | None = None,
                 observers: list[Observer] | None = None, seed: int | None = None) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {sample_rate}")
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._schema_of = schemas if callable(schemas) else (lambda _m, _v, s=schemas: s)
        self.sample_rate = sample_rate
        self.queue_rows = queue_rows
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.flush_seconds = flush_seconds
        self.on_written = on_written
        self.on_dropped = on_dropped
        self.observers = list(observers or [])
        self.stats = LogStats()
        self._random = random.Random(seed).random
        self._queue: deque = deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._files: dict[tuple[str, int], _File] = {}
        self._arrow: dict[tuple[str, int], Any] = {}
        self._seq = 0
        self._stop = threading.Event()
        self._rotate_now = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shipml-prediction-log", daemon=True)
        self._thread.start()

    # ---- producers (the hot path) -----------------------------------------------------------------
    def record_one(self, request_id: str, model: str, version: int, row: dict[str, Any], score: float,
                   prediction: int) -> bool:
        """Queue one answered row; False when it was sampled out or dropped (queue full). Never waits."""
        if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
            self.stats.sampled_out += 1
            return False
        with self._lock:
            self.stats.accepted += 1
            if self._queued >= self.queue_rows:
                self.stats.dropped += 1
                dropped = True
            else:
                self._queued += 1
                self._queue.append((time.time(), request_id, model, version, row, score, prediction))
                dropped = False
        if dropped and self.on_dropped is not None:
            self.on_dropped(1)
        return not dropped

    def record_columns(self, ids: Any, model: str, version: int, columns: dict[str, Any], scores: Any,
                       predictions: Any, *, block: bool = False, timeout: float | None = None) -> bool:
        """Queue many rows at once (a batch request, a batch-job chunk); ``block`` waits for room, never drops."""
        n = len(scores)
        if n == 0:
            return True
        if self.sample_rate < 1.0:
            keep = np.random.default_rng(int(self._random() * 2**32)).random(n) < self.sample_rate
            self.stats.sampled_out += int(n - keep.sum())
            ids = np.asarray(ids, dtype=object)[keep]
            columns = {k: np.asarray(v)[keep] for k, v in columns.items()}
            scores, predictions = np.asarray(scores)[keep], np.asarray(predictions)[keep]
            n = len(scores)
            if n == 0:
                return True
        item = (time.time(), ids, model, version, columns, scores, predictions, n)
        with self._lock:
            self.stats.accepted += n
            if block:
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._queued and self._queued + n > self.queue_rows and not self._stop.is_set():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    self._space.wait(left if left is not None else 1.0)
            if self._queued and self._queued + n > self.queue_rows:
                self.stats.dropped += n
                dropped = True
            else:
                self._queued += n
                self._queue.append(item)
                dropped = False
        if dropped and self.on_dropped is not None:
            self.on_dropped(n)
        return not dropped

    # ---- the writer thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.flush_seconds)
            try:
                self._drain()
                if self._rotate_now.is_set():
                    self._rotate_now.clear()
                    self._close_files()
                else:
                    self._rotate_old()
            except Exception:  # the log must never take the server down; what failed is dropped and counted
                log.exception("prediction log write failed")
            if stopping:
                return

    def _drain(self) -> None:
        with self._lock:
            items, self._queue = self._queue, deque()
            n = self._queued
            self._queued = 0
            self._space.notify_all()
        if not items:
            return
        groups: dict[tuple[str, int], list] = {}
        for item in items:
            groups.setdefault((item[2], item[3]), []).append(item)
        for (model, version), group in groups.items():
            try:
                columns = self._columns(model, version, group)
            except Exception:
                lost = sum(1 if len(i) == 7 else i[7] for i in group)
                self.stats.dropped += lost
                if self.on_dropped is not None:
                    self.on_dropped(lost)
                log.exception("prediction log records could not be converted", extra={"model": model})
                continue
            rows = len(columns["score"])
            for observer in self.observers:
                try:
                    observer(model, version, columns)
                except Exception:
                    log.exception("prediction log observer failed")
            if self.directory is not None:
                self._write(model, version, columns)
            self.stats.written += rows
            if self.on_written is not None:
                self.on_written(rows)
        del n

    def _columns(self, model: str, version: int, group: list) -> dict[str, np.ndarray]:
        """The records of one model version as columns (features, score, prediction, id, time)."""
        names = self._schema_of(model, version).names
        parts: dict[str, list] = {k: [] for k in ("id", "time", "score", "prediction", *names)}
        singles = [i for i in group if len(i) == 7]
        if singles:
            t, ids, _, _, rows, scores, preds = zip(*singles, strict=True)
            parts["time"].append(np.asarray(t, dtype=np.float64))
            parts["id"].append(np.asarray(ids, dtype=object))
            parts["score"].append(np.asarray(scores, dtype=np.float64))
            parts["prediction"].append(np.asarray(preds, dtype=np.int64))
            for name in names:
                parts[name].append(np.asarray([r[name] for r in rows]))
        for t, ids, _, _, cols, scores, preds, n in (i for i in group if len(i) == 8):
            parts["time"].append(np.full(n, t, dtype=np.float64))
            parts["id"].append(np.asarray(ids, dtype=object).astype(str).astype(object))
            parts["score"].append(np.asarray(scores, dtype=np.float64))
            parts["prediction"].append(np.asarray(preds, dtype=np.int64))
            for name in names:
                parts[name].append(np.asarray(cols[name]))
        out = {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in parts.items()}
        return out

    def _arrow_schema(self, model: str, version: int) -> Any:
        import pyarrow as pa

        key = (model, version)
        if key not in self._arrow:
            schema = self._schema_of(model, version)
            types = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(), "category": pa.string()}
            self._arrow[key] = pa.schema(
                [("id", pa.string()), ("time", pa.timestamp("us", tz="UTC")), ("model", pa.string()),
                 ("model_version", pa.int32())]
                + [(f.name, types.get(f.dtype, pa.string())) for f in schema.features]
                + [("score", pa.float64()), ("prediction", pa.int64())])
        return self._arrow[key]

    def _write(self, model: str, version: int, columns: dict[str, np.ndarray]) -> None:
        import pyarrow as pa

        schema = self._arrow_schema(model, version)
        n = len(columns["score"])
        arrays = []
        for f in schema:
            if f.name == "time":
                arrays.append(pa.array((columns["time"] * 1e6).astype(np.int64), type=pa.int64()).cast(f.type))
            elif f.name == "model":
                arrays.append(pa.array([model] * n, type=pa.string()))
            elif f.name == "model_version":
                arrays.append(pa.array(np.full(n, version, dtype=np.int32)))
            else:
                values = columns[f.name]
                if pa.types.is_string(f.type):
                    values = [str(v) for v in values.tolist()]
                arrays.append(pa.array(values, type=f.type))
        table = pa.Table.from_arrays(arrays, schema=schema)
        key = (model, version)
        current = self._files.get(key)
        if current is None:
            assert self.directory is not None
            self._seq += 1
            current = self._files[key] = _File(self.directory, model, version, schema, self._seq)
        current.writer.write_table(table)
        current.rows += n
        if current.size() >= self.rotate_bytes:
            self._finish(key)

    def _finish(self, key: tuple[str, int]) -> None:
        current = self._files.pop(key, None)
        if current is not None:
            self.stats.files.append(str(current.close()))

    def _rotate_old(self) -> None:
        now = time.monotonic()
        for key, current in list(self._files.items()):
            if now - current.opened >= self.rotate_seconds:
                self._finish(key)

    def _close_files(self) -> None:
        for key in list(self._files):
            self._finish(key)

    # ---- control ---------------------------------------------------------------------------------
    @property
    def queued(self) -> int:
        return self._queued

    def rotate(self, timeout: float = 10.0) -> None:
        """Write what is queued and complete the open files now (readers then see every record so far)."""
        self._rotate_now.set()
        deadline = time.monotonic() + timeout
        while self._rotate_now.is_set() and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self, timeout: float = 30.0) -> LogStats:
        """Write everything queued, complete the files, stop the thread."""
        self._stop.set()
        with self._lock:
            self._space.notify_all()
        self._thread.join(timeout)
        with contextlib.suppress(Exception):
            self._drain()
            self._close_files()
        return self.stats

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
