"""A TF-Serving-style model repository: ``<root>/<name>/<version>/`` folders holding kit bundles.

The server loads every version it finds; the highest version of a name is its default, and every
version stays addressable. :meth:`ModelRepository.refresh` compares a cheap signature of the tree
(names, versions, and the name, size and modification time of every file of a version: a few
``scandir`` calls) with the last one and only then loads what is new, so calling it every couple of
seconds costs next to nothing.

A version is served only once it has **proved it can score**: its bundle verifies, and the schema's
example row goes through every path the routes use (one row, and a batch) with probabilities that
are finite and add up to one. Until then the previous default keeps serving. A version that failed
is tried again when any of its files changes (a copy still being written, ``cp -a`` over a failed
one) and every ``RETRY_SECONDS`` anyway; failures of removed folders are forgotten.

scikit-learn scores in a worker thread (:attr:`ServedModel.executor`): a prediction takes
milliseconds and must not hold the event loop, which answers health checks and metrics meanwhile.
ONNX scores a row in tens of microseconds, less than a thread hop costs: it stays in the loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipml.errors import ShipmlError
from shipml.predictor import Predictor, load_predictor
from shipml.serving.errors import ApiError
from shipml.serving.schemas import RecordCodec, example_record

log = logging.getLogger("shipml.serving")

RETRY_SECONDS = 30.0  # a failed version is tried again this often even when its files did not change


@dataclass
class ServedModel:
    """One loaded version: the predictor plus what the routes need, prepared once at load time."""

    name: str
    version: int
    predictor: Predictor
    codec: RecordCodec
    class_names: list[str]
    class_labels: list[int]
    executor: Executor | None = None  # None: score in the event loop (ONNX); else in this thread pool

    @property
    def backend(self) -> str:
        return self.predictor.metadata.backend

    def score_one(self, row: dict[str, Any]) -> tuple[list[float], int]:
        """Probabilities of one valid row (a list, one per class) and the predicted class's index
        (the bundle's decision threshold, see :meth:`Predictor.decide`)."""
        proba = np.asarray(self.predictor.predict_proba_one(row))
        return proba.tolist(), self.predictor.decide_one(proba)

    def score(self, columns: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (rows x classes) and the predicted class's index, for valid columns."""
        proba = np.asarray(self.predictor.predict_proba(columns), dtype=np.float64)
        return proba, self.predictor.decide(proba)

    async def score_one_async(self, row: dict[str, Any]) -> tuple[list[float], int]:
        if self.executor is None:
            return self.score_one(row)
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.score_one, row)

    async def score_async(self, columns: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        if self.executor is None:
            return self.score(columns)
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.score, columns)

    def prove(self) -> None:
        """Score the schema's example on every path (one row, a batch); raise if any answer is unusable."""
        example = example_record(self.predictor.schema)
        row = self.codec.record.model_validate(example).__dict__  # what /predict hands the model
        one, _ = self.score_one(row)
        batch, _ = self.score({n: [row[n]] * 2 for n in self.codec.names})
        single, _ = self.score({n: [row[n]] for n in self.codec.names})
        k = len(self.class_names)
        for what, proba in (("one row", [one]), ("a batch", batch.tolist()), ("a one-row batch", single.tolist())):
            if len(proba) != (2 if what == "a batch" else 1) or any(len(p) != k for p in proba):
                raise ShipmlError(f"scoring {what} gave the wrong shape (expected {k} probabilities per row)")
            for p in proba:
                if not all(math.isfinite(x) for x in p) or abs(sum(p) - 1.0) > 1e-3:
                    raise ShipmlError(f"scoring {what} gave probabilities that are not finite or do not "
                                      f"add up to 1: {p}")
        if max(abs(a - b) for a, b in zip(one, batch[0].tolist(), strict=True)) > 1e-4:
            raise ShipmlError("the one-row and the batch path disagree on the same row")


@dataclass
class _Snapshot:
    """An immutable view of what is served: swapped whole, so readers never see half a reload."""

    models: dict[str, dict[int, ServedModel]] = field(default_factory=dict)
    defaults: dict[str, ServedModel] = field(default_factory=dict)
    generation: int = 0


class ModelRepository:
    """Loads and serves the bundles of a repository folder; thread-safe reloads, lock-free reads."""

    def __init__(self, root: str | Path, default_model: str | None = None, max_batch_rows: int = 1000,
                 executor: Executor | None = None, trusted_keys: Path | None = None) -> None:
        self.root = Path(root)
        self.trusted_keys = trusted_keys  # None: SHIPML_TRUSTED_KEYS decides (see shipml.signing)
        self.default_model = default_model
        self.max_batch_rows = max_batch_rows
        self.executor = executor  # where scikit-learn models score (None: in the caller's thread)
        self._snapshot = _Snapshot()
        self._signature: tuple | None = None
        self._files: dict[tuple[str, int], tuple] = {}  # (name, version) -> files signature it was loaded from
        self._failed: dict[tuple[str, int], tuple[tuple, str, float]] = {}  # -> (files, message, when)
        self._names_on_disk: set[str] = set()
        self._lock = threading.Lock()
        self.loaded_once = False
        self.listeners: list[Any] = []  # called with (added, removed) lists of ServedModel

    # ---- reads (hot path) ---------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """All models ready (the v2 spec's server readiness): every model folder has a served version."""
        snap = self._snapshot
        return self.loaded_once and bool(snap.defaults) and self._names_on_disk <= set(snap.models)

    def not_ready(self) -> list[str]:
        """Models on disk with no version that could be served."""
        return sorted(self._names_on_disk - set(self._snapshot.models))

    @property
    def generation(self) -> int:
        return self._snapshot.generation

    def names(self) -> list[str]:
        return sorted(self._snapshot.models)

    def versions(self, name: str) -> list[int]:
        return sorted(self._lookup_name(name))

    def all_models(self) -> list[ServedModel]:
        snap = self._snapshot
        return [snap.models[n][v] for n in sorted(snap.models) for v in sorted(snap.models[n])]

    def default(self) -> ServedModel:
        """The model ``/predict`` serves: ``default_model`` if set, else the first name."""
        snap = self._snapshot
        if not snap.defaults:
            raise ApiError(503, "no model is loaded yet" if not self.loaded_once else
                           f"the model repository {self.root} holds no loadable model")
        if self.default_model:
            return self.get(self.default_model)
        return snap.defaults[min(snap.defaults)]

    def get(self, name: str, version: int | str | None = None) -> ServedModel:
        versions = self._lookup_name(name)
        if version is None:
            return self._snapshot.defaults[name]
        try:
            v = int(version)
        except (TypeError, ValueError):
            raise ApiError(400, f"model version must be a whole number, got {str(version)[:40]!r}") from None
        model = versions.get(v)
        if model is None:
            failed = self._failed.get((name, v))
            why = f" (it failed to load: {failed[1][:200]})" if failed else ""
            raise ApiError(404, f"model '{name}' has no version {v}{why}; served versions: "
                                f"{', '.join(map(str, sorted(versions)))}")
        return model

    def _lookup_name(self, name: str) -> dict[int, ServedModel]:
        versions = self._snapshot.models.get(name)
        if versions is None:
            served = ", ".join(sorted(self._snapshot.models)) or "none yet"
            raise ApiError(404, f"model '{str(name)[:80]}' is not served; served models: {served}")
        return versions

    # ---- loading ------------------------------------------------------------------------------
    def signature(self) -> tuple:
        """Every version folder with the name, size and mtime of its files: changes with any copy or edit."""
        entries = []
        try:
            with os.scandir(self.root) as names:
                for n in sorted(names, key=lambda e: e.name):
                    if not n.is_dir() or n.name.startswith("."):
                        continue
                    with os.scandir(n.path) as versions:
                        for v in versions:
                            if v.name.isdigit() and v.is_dir():
                                entries.append((n.name, int(v.name), _files_of(v.path)))
                    if not any(e[0] == n.name for e in entries):
                        entries.append((n.name, -1, ()))  # a model folder with no version yet
        except FileNotFoundError:
            return ("missing",)
        return tuple(sorted(entries))

    def refresh(self) -> bool:
        """Load new or changed versions and drop removed ones; True when what is served changed."""
        with self._lock:
            sig = self.signature()
            retry_due = any(time.monotonic() - when >= RETRY_SECONDS for _, _, when in self._failed.values())
            if sig == self._signature and not retry_due:
                return False
            if sig == ("missing",) and self._signature != sig:
                log.error("model repository missing", extra={"path": str(self.root)})
            changed = self._apply(sig)
            self._signature = sig
            self.loaded_once = True
            return changed

    def _apply(self, sig: tuple) -> bool:
        old = self._snapshot
        entries = [] if sig == ("missing",) else list(sig)
        self._names_on_disk = {name for name, _, _ in entries}
        wanted = {(name, version): files for name, version, files in entries if version >= 0}
        for key in [k for k in self._failed if k not in wanted]:  # removed folders: forget their failures
            del self._failed[key]
        models: dict[str, dict[int, ServedModel]] = {}
        added: list[ServedModel] = []
        now = time.monotonic()
        for (name, version), files in sorted(wanted.items()):
            current = old.models.get(name, {}).get(version)
            if current is not None and self._files.get((name, version)) == files:
                models.setdefault(name, {})[version] = current
                continue
            failed = self._failed.get((name, version))
            if failed is not None and failed[0] == files and now - failed[2] < RETRY_SECONDS:
                if current is not None:
                    models.setdefault(name, {})[version] = current
                continue
            try:
                served = self._load(self.root / name / str(version), name, version)
            except Exception as exc:  # a bad bundle must not stop the others (BundleError, pickle errors)
                message = str(exc) if isinstance(exc, ShipmlError) else f"{type(exc).__name__}: {exc}"
                self._failed[(name, version)] = (files, message, now)
                log.error("model version not loaded", extra={"model": name, "version": version, "error": message})
                if current is not None:  # the version it replaces keeps serving
                    models.setdefault(name, {})[version] = current
                continue
            self._failed.pop((name, version), None)
            self._files[(name, version)] = files
            models.setdefault(name, {})[version] = served
            added.append(served)
            log.info("model version loaded", extra={"model": name, "version": version, "backend": served.backend})
        removed = [m for n, vs in old.models.items() for v, m in vs.items() if models.get(n, {}).get(v) is not m]
        for m in removed:
            if (m.name, m.version) not in wanted:
                self._files.pop((m.name, m.version), None)
                log.info("model version unloaded", extra={"model": m.name, "version": m.version})
        defaults = {n: vs[max(vs)] for n, vs in models.items() if vs}
        self._snapshot = _Snapshot(models, defaults, old.generation + 1)
        for listener in self.listeners:
            listener(added, removed)
        return bool(added or removed)

    def _load(self, folder: Path, name: str, version: int) -> ServedModel:
        predictor = load_predictor(folder, trusted_keys=self.trusted_keys)
        meta = predictor.metadata
        if meta.name != name or meta.version != version:
            log.warning("bundle metadata differs from its folder; the folder wins",
                        extra={"model": name, "version": version, "bundle_name": meta.name,
                               "bundle_version": meta.version})
        served = ServedModel(
            name=name, version=version, predictor=predictor,
            codec=RecordCodec(predictor.schema, name, self.max_batch_rows),
            class_names=list(meta.class_names), class_labels=list(meta.class_labels),
            executor=None if predictor.backend == "onnx" else self.executor,
        )
        try:
            served.prove()
        except Exception as exc:
            detail = str(exc) if isinstance(exc, ShipmlError) else f"{type(exc).__name__}: {exc}"
            raise ShipmlError(f"{folder}: loaded but cannot score its schema's example: {detail}") from None
        return served

    def failures(self) -> dict[str, str]:
        """Versions that did not load, with why (``name/version`` -> message)."""
        return {f"{n}/{v}": failed[1] for (n, v), failed in sorted(self._failed.items())}


def _files_of(folder: str) -> tuple:
    """(name, size, mtime) of every file in a version folder and one level below: what a copy changes."""
    out = []
    with os.scandir(folder) as entries:
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    with os.scandir(e.path) as inner:
                        for f in inner:
                            st = f.stat()
                            out.append((f"{e.name}/{f.name}", st.st_size, st.st_mtime_ns))
                else:
                    st = e.stat()
                    out.append((e.name, st.st_size, st.st_mtime_ns))
            except FileNotFoundError:  # removed while we looked: the next check sees the new state
                continue
    return tuple(sorted(out))
