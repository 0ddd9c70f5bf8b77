"""A TF-Serving-style model repository: ``<root>/<name>/<version>/`` folders holding kit bundles.

The server loads every version it finds; the highest version of a name is its default, and every
version stays addressable. :meth:`ModelRepository.refresh` compares a cheap signature of the folder
tree (names, versions and folder modification times: a few ``scandir`` calls) with the last one and
only then loads what is new, so calling it every couple of seconds costs next to nothing. A version
whose bundle does not verify yet (still being copied, or broken) is reported and tried again when its
folder changes; the versions already served keep serving.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipml.errors import ShipmlError
from shipml.predictor import Predictor, load_predictor
from shipml.serving.errors import ApiError
from shipml.serving.schemas import RecordCodec

log = logging.getLogger("shipml.serving")


@dataclass
class ServedModel:
    """One loaded version: the predictor plus what the routes need, prepared once at load time."""

    name: str
    version: int
    predictor: Predictor
    codec: RecordCodec
    class_names: list[str]
    class_labels: list[int]

    @property
    def backend(self) -> str:
        return self.predictor.metadata.backend

    def __post_init__(self) -> None:
        # A backend with a one-row path (ONNX: seven tiny arrays, no DataFrame) is used for /predict.
        self._one = getattr(self.predictor, "predict_proba_one", None)
        self._names = tuple(self.predictor.schema.names)

    def score_one(self, row: dict[str, Any]) -> tuple[list[float], int]:
        """Probabilities of one valid row (a list, one per class) and the index of the most probable."""
        if self._one is not None:
            proba = self._one(row).tolist()
        else:
            proba = self.predictor.predict_proba({n: [row[n]] for n in self._names})[0].tolist()
        return proba, proba.index(max(proba))

    def score(self, columns: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (rows x classes) and the index of the most probable class, for valid columns."""
        proba = np.asarray(self.predictor.predict_proba(columns), dtype=np.float64)
        return proba, proba.argmax(axis=1)


@dataclass
class _Snapshot:
    """An immutable view of what is served: swapped whole, so readers never see half a reload."""

    models: dict[str, dict[int, ServedModel]] = field(default_factory=dict)
    defaults: dict[str, ServedModel] = field(default_factory=dict)
    generation: int = 0


class ModelRepository:
    """Loads and serves the bundles of a repository folder; thread-safe reloads, lock-free reads."""

    def __init__(self, root: str | Path, default_model: str | None = None, max_batch_rows: int = 1000,
                 trusted_keys: Path | None = None) -> None:
        self.root = Path(root)
        self.trusted_keys = trusted_keys  # None: SHIPML_TRUSTED_KEYS decides (see shipml.signing)
        self.default_model = default_model
        self.max_batch_rows = max_batch_rows
        self._snapshot = _Snapshot()
        self._signature: tuple | None = None
        self._failed: dict[Path, tuple[int, str]] = {}  # folder -> (mtime it failed at, message)
        self._lock = threading.Lock()
        self.loaded_once = False
        self.listeners: list[Any] = []  # called with (added, removed) lists of ServedModel

    # ---- reads (hot path) ---------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.loaded_once and bool(self._snapshot.defaults)

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
            raise ApiError(404, f"model '{name}' has no version {v}; served versions: "
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
        """Names, versions and folder mtimes: changes whenever a version is added, removed or rewritten."""
        entries = []
        try:
            with os.scandir(self.root) as names:
                for n in sorted(names, key=lambda e: e.name):
                    if not n.is_dir() or n.name.startswith("."):
                        continue
                    with os.scandir(n.path) as versions:
                        for v in versions:
                            if v.name.isdigit() and v.is_dir():
                                entries.append((n.name, int(v.name), v.stat().st_mtime_ns))
        except FileNotFoundError:
            return ("missing",)
        return tuple(sorted(entries))

    def refresh(self) -> bool:
        """Load new or changed versions and drop removed ones; True when what is served changed."""
        with self._lock:
            sig = self.signature()
            if sig == self._signature:
                return False
            if sig == ("missing",) and self._signature != sig:
                log.error("model repository missing", extra={"path": str(self.root)})
            changed = self._apply(sig)
            self._signature = sig
            self.loaded_once = True
            return changed

    def _apply(self, sig: tuple) -> bool:
        old = self._snapshot
        wanted = {(name, version): mtime for name, version, mtime in sig if sig != ("missing",)}
        models: dict[str, dict[int, ServedModel]] = {}
        added: list[ServedModel] = []
        for (name, version), mtime in sorted(wanted.items()):
            folder = self.root / name / str(version)
            current = old.models.get(name, {}).get(version)
            prev_sig = self._signature_of(name, version)
            if current is not None and prev_sig == mtime:
                models.setdefault(name, {})[version] = current
                continue
            failed = self._failed.get(folder)
            if failed is not None and failed[0] == mtime:
                if current is not None:
                    models.setdefault(name, {})[version] = current
                continue
            try:
                served = self._load(folder, name, version)
            except Exception as exc:  # a bad bundle must not stop the others (BundleError, pickle errors)
                message = str(exc) if isinstance(exc, ShipmlError) else f"{type(exc).__name__}: {exc}"
                self._failed[folder] = (mtime, message)
                log.error("model version not loaded", extra={"model": name, "version": version, "error": message})
                if current is not None:
                    models.setdefault(name, {})[version] = current
                continue
            self._failed.pop(folder, None)
            models.setdefault(name, {})[version] = served
            added.append(served)
            log.info("model version loaded", extra={"model": name, "version": version, "backend": served.backend})
        removed = [m for n, vs in old.models.items() for v, m in vs.items() if models.get(n, {}).get(v) is not m]
        removed = [m for m in removed if m not in added]
        for m in removed:
            if (m.name, m.version) not in wanted:
                log.info("model version unloaded", extra={"model": m.name, "version": m.version})
        defaults = {n: vs[max(vs)] for n, vs in models.items() if vs}
        self._snapshot = _Snapshot(models, defaults, old.generation + 1)
        self._mtimes = wanted
        for listener in self.listeners:
            listener(added, removed)
        return bool(added or removed)

    def _signature_of(self, name: str, version: int) -> int | None:
        return getattr(self, "_mtimes", {}).get((name, version))

    def _load(self, folder: Path, name: str, version: int) -> ServedModel:
        predictor = load_predictor(folder, trusted_keys=self.trusted_keys)
        meta = predictor.metadata
        if meta.name != name or meta.version != version:
            log.warning("bundle metadata differs from its folder; the folder wins",
                        extra={"model": name, "version": version, "bundle_name": meta.name,
                               "bundle_version": meta.version})
        return ServedModel(
            name=name, version=version, predictor=predictor,
            codec=RecordCodec(predictor.schema, name, self.max_batch_rows),
            class_names=list(meta.class_names), class_labels=list(meta.class_labels),
        )

    def failures(self) -> dict[str, str]:
        """Versions that did not load, with why (folder -> message)."""
        return {str(k): v[1] for k, v in self._failed.items()}
