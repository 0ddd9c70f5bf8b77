"""Over-the-air model updates on the device: verify, stage, self-test, swap — or keep what works.

A device that pulls a new bundle from the network is the easiest place to plant a model: the update
is refused unless its signature is valid for a key the device trusts (``--trusted-keys`` or
``SHIPML_TRUSTED_KEYS``) and every hash matches. A verified update is copied into ``versions/`` next to
the running one, loaded and *self-tested* (probe rows built from its own schema must give finite
probabilities that add up to one); only then does the ``current`` link switch, atomically, and the
link ``previous`` keeps the version it replaced. An update that fails its self-test is deleted and
``current`` never moves. :func:`rollback` goes back to ``previous`` by hand.

Probe rows cannot cover real traffic, so the serving device (:class:`DeviceWatcher`, started by
``python -m shipml.edge serve DEVICE``) swaps a new ``current`` in live *on probation*
(:mod:`shipml.edge.probation`): for its first N scored requests or T seconds the version it replaced
stays in memory and answers every request the new one fails (it raises, or returns NaN or
probabilities that are not probabilities); beyond ``max_failures`` failures the device rolls back by
itself — ``current`` back to the version it replaced, with the same atomic link switch as
:func:`rollback`, ``previous`` then naming the failed version — and keeps serving without a restart.
Bad client input (a 4xx) never counts.

Layout of a device folder::

    device/
      versions/<name>-v<version>-<sha8>/   verified bundle copies
      current -> versions/...              what ``serve`` loads
      previous -> versions/...             the version before (for rollback)
      update.log                           one JSON line per event, by ``stage``: verify, self-test (refused,
                                           with why), swap (accepted), probation (passed), auto_rollback
                                           (what failed, how many of how many requests), rollback (by hand)

Standard library + the edge runtime only, like the rest of the device side.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipml.bundle import SUMS_FILE, verify_bundle
from shipml.edge.probation import ModelFailure, Probation, ProbationSettings, Serving, score_checked
from shipml.edge.runtime import OnnxPredictor
from shipml.errors import BundleError, ShipmlError
from shipml.schema import FeatureSchema

log = logging.getLogger("shipml.edge.update")

CURRENT, PREVIOUS, VERSIONS, LOG_FILE = "current", "previous", "versions", "update.log"


@dataclass(frozen=True)
class UpdateResult:
    """What :func:`apply_update` did: ``accepted`` True only when ``current`` now points at the update."""

    accepted: bool
    reason: str
    current: Path | None
    previous: Path | None


def probe_rows(schema: FeatureSchema, rows: int = 8) -> dict[str, list[Any]]:
    """Valid rows spread over each feature's range (its categories in turn): the self-test's input."""
    columns: dict[str, list[Any]] = {}
    for f in schema.features:
        if f.dtype == "category":
            cats = list(f.categories or ("",))
            columns[f.name] = [cats[i % len(cats)] for i in range(rows)]
        elif f.dtype == "bool":
            columns[f.name] = [bool(i % 2) for i in range(rows)]
        else:
            lo = f.min if f.min is not None else 0.0
            hi = f.max if f.max is not None else lo + 1.0
            values = np.linspace(lo, hi, rows)
            columns[f.name] = [int(round(v)) if f.dtype == "int" else float(v) for v in values]
    return columns


def self_test(predictor: OnnxPredictor) -> None:
    """Raise :class:`BundleError` unless the model answers probe rows with sane probabilities."""
    columns = probe_rows(predictor.schema)
    validation = predictor.validate(columns)
    if not validation.ok:
        raise BundleError(f"self-test rows do not fit the bundle's own schema: {'; '.join(validation.problems(2))}")
    try:
        score_checked(predictor, validation.columns)
    except ModelFailure as exc:
        raise BundleError(f"self-test: the model {exc}" + (f" ({exc.detail})" if exc.detail else "")) from None


def _record(device: Path, event: dict[str, Any]) -> None:
    event = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **event}
    with open(device / LOG_FILE, "a") as f:
        f.write(json.dumps(event) + "\n")
    level = logging.INFO if event.get("accepted") else logging.WARNING
    log.log(level, "%s: %s", event.get("stage"), event.get("reason"))


def _link(device: Path, name: str) -> Path | None:
    path = device / name
    return path.resolve() if path.is_symlink() else None


def _point(device: Path, name: str, target: Path) -> None:
    """Make ``device/name`` point at ``target`` atomically (a new link renamed over the old one)."""
    tmp = device / f".{name}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path(VERSIONS) / target.name)
    os.replace(tmp, device / name)


def current_bundle(device: str | Path) -> Path:
    """The bundle ``serve`` should load: ``device/current``."""
    device = Path(device)
    target = _link(device, CURRENT)
    if target is None:
        raise ShipmlError(f"{device}: no current model on this device yet (run 'update' first)")
    return target


def apply_update(device: str | Path, bundle: str | Path, trusted_keys: Any = None) -> UpdateResult:
    """Install ``bundle`` on ``device`` if its signature, hashes and self-test pass; log why if not.

    Never raises for a bad update: the result says whether it was accepted, and ``update.log`` why.
    """
    device, bundle = Path(device), Path(bundle)
    (device / VERSIONS).mkdir(parents=True, exist_ok=True)
    before = _link(device, CURRENT), _link(device, PREVIOUS)
    try:
        metadata = verify_bundle(bundle, trusted_keys=trusted_keys)  # signature + hashes, before any copy
    except ShipmlError as exc:
        _record(device, {"accepted": False, "stage": "verify", "bundle": str(bundle), "reason": str(exc)})
        return UpdateResult(False, str(exc), *before)
    digest = hashlib.sha256((bundle / SUMS_FILE).read_bytes()).hexdigest()[:8]
    target = device / VERSIONS / f"{metadata.name}-v{metadata.version}-{digest}"
    if before[0] == target.resolve():
        reason = f"{target.name} is already the current version"
        _record(device, {"accepted": False, "stage": "verify", "bundle": str(bundle), "reason": reason})
        return UpdateResult(False, reason, *before)
    staging = device / VERSIONS / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(bundle, staging)
    try:
        # The copy is what will run: verify it again (the source could change while being copied).
        self_test(OnnxPredictor.load(staging, trusted_keys=trusted_keys))
    except Exception as exc:  # any failure to load or answer means: keep the version that works
        shutil.rmtree(staging, ignore_errors=True)
        reason = f"self-test failed, kept {before[0].name if before[0] else 'nothing'}: {exc}"
        _record(device, {"accepted": False, "stage": "self-test", "bundle": str(bundle), "reason": reason})
        return UpdateResult(False, reason, *before)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    if before[0] is not None:
        _point(device, PREVIOUS, before[0])
    _point(device, CURRENT, target)
    reason = f"now serving {target.name}" + (f" (previous: {before[0].name})" if before[0] else "")
    _record(device, {"accepted": True, "stage": "swap", "bundle": str(bundle), "reason": reason})
    return UpdateResult(True, reason, target, before[0])


def rollback(device: str | Path, *, to: Path | None = None, expect_current: Path | None = None,
             stage: str = "rollback", reason: str | None = None, **details: Any) -> Path:
    """Point ``current`` back at ``previous`` (or at the version ``to``); the one left becomes ``previous``.

    ``expect_current``: roll back only if ``current`` still points there (an automatic rollback must
    not undo an update an operator made meanwhile). Logs one line with ``stage`` and ``reason``.
    """
    device = Path(device)
    current = _link(device, CURRENT)
    target = to.resolve() if to is not None else _link(device, PREVIOUS)
    if target is None or not target.is_dir():
        raise ShipmlError(f"{device}: no previous version to roll back to")
    if expect_current is not None and current != expect_current.resolve():
        raise ShipmlError(f"{device}: current is {current.name if current else 'nothing'}, not "
                          f"{expect_current.name}: not rolling back over it")
    _point(device, CURRENT, target)
    if current is not None and current != target:
        _point(device, PREVIOUS, current)
    _record(device, {"accepted": stage == "rollback", "stage": stage,
                     "reason": reason or f"rolled back to {target.name}", **details})
    return target


def resolve_bundle(path: str | Path) -> Path:
    """A bundle folder as given, or the ``current`` version when ``path`` is a device folder."""
    path = Path(path)
    return current_bundle(path) if (path / CURRENT).is_symlink() or (path / VERSIONS).is_dir() else path


class DeviceWatcher:
    """Keeps a server's model in step with ``device/current``, and runs each live swap's probation.

    A new ``current`` is verified (signature, hashes) again as it is loaded; if that fails the server
    keeps the version it has and says why once. A version that loads is swapped in on probation
    (:mod:`shipml.edge.probation`) with the version it replaced kept in memory as the fallback; too many
    failures on live traffic and :meth:`_roll_back` points ``current`` back at that version.
    """

    def __init__(self, server: Any, device: str | Path, trusted_keys: Any = None, every: float = 2.0,
                 probation: ProbationSettings | None = None) -> None:
        self.server, self.device, self.trusted_keys, self.every = server, Path(device), trusted_keys, every
        self.settings = probation if probation is not None else ProbationSettings()
        self.served = current_bundle(self.device)
        self._fallback_path: Path | None = None  # while a probation runs: the version to go back to
        self._refused: set[Path] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DeviceWatcher:
        self._thread = threading.Thread(target=self._loop, name="shipml-edge-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.tick()
            except Exception as exc:  # the watcher must outlive any surprise; the server keeps serving
                log.warning("device watcher: %s", exc)

    def tick(self) -> None:
        """End an expired probation; load and swap in a new ``current`` if there is one."""
        probation = self.server.live.probation
        if probation is not None:
            probation.expire()
        now = current_bundle(self.device)
        with self._lock:
            if now == self.served or now in self._refused:
                return
        try:
            predictor = OnnxPredictor.load(now, trusted_keys=self.trusted_keys)
        except Exception as exc:  # keep serving what works; say why once
            self._refused.add(now)
            log.warning("not switching to the new current version %s: %s", now.name, exc)
            return
        with self._lock:
            if current_bundle(self.device) == now and now != self.served:
                self._swap(predictor, now)

    def _swap(self, predictor: OnnxPredictor, path: Path) -> None:
        live = self.server.live
        if live.probation is not None and live.probation.outcome != "passed":
            live.probation.supersede()  # the version on probation never proved itself: fall back past it
            fallback = live.probation.fallback
        else:
            fallback, self._fallback_path = live.predictor, self.served
        probation = None
        if self.settings.enabled:
            probation = Probation(path.name, fallback, self.settings, self._roll_back, self._passed)
        self.server.live = Serving(predictor, probation)
        self.served = path
        log.warning("now serving %s%s", path.name, f" on probation ({self.settings.describe()})" if probation else "")

    def _roll_back(self, probation: Probation, reason: str) -> None:
        with self._lock:
            if self.server.live.probation is not probation:
                return  # superseded by a newer swap meanwhile
            self.server.live = Serving(probation.fallback)  # in memory first: the next request is safe
            candidate, self.served = self.served, self._fallback_path or self.served
            try:
                rollback(self.device, to=self.served, expect_current=candidate, stage="auto_rollback",
                         reason=reason, version=candidate.name, restored=self.served.name,
                         failed=probation.failures, requests=probation.requests,
                         seconds=round(probation.elapsed, 3))
            except ShipmlError as exc:  # links moved meanwhile, or the old version is gone: still serve it
                self._refused.add(candidate)
                log.warning("auto rollback of %s: serving %s, but %s", candidate.name, self.served.name, exc)

    def _passed(self, probation: Probation, reason: str) -> None:
        with self._lock:
            if self.server.live.probation is not probation:
                return
            self.server.live = Serving(self.server.live.predictor)  # releases the fallback
            _record(self.device, {"accepted": True, "stage": "probation", "version": probation.candidate,
                                  "reason": reason, "failed": probation.failures, "requests": probation.requests,
                                  "seconds": round(probation.elapsed, 3)})


def watch_device(server: Any, device: str | Path, trusted_keys: Any = None, every: float = 2.0,
                 probation: ProbationSettings | None = None) -> DeviceWatcher | None:
    """When ``device`` is a device folder, reload the server's model whenever ``current`` moves.

    Each live swap starts a probation (``probation``, default :class:`ProbationSettings`); returns the
    running :class:`DeviceWatcher` (``stop()`` it), or None when ``device`` is a plain bundle.
    """
    if not (Path(device) / CURRENT).is_symlink():
        return None
    return DeviceWatcher(server, device, trusted_keys, every, probation).start()
