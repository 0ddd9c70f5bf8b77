"""Over-the-air model updates on the device: verify, stage, self-test, swap — or keep what works.

A device that pulls a new bundle from the network is the easiest place to plant a model: the update
is refused unless its signature is valid for a key the device trusts (``--trusted-keys`` or
``SHIPML_TRUSTED_KEYS``) and every hash matches. A verified update is copied into ``versions/`` next to
the running one, loaded and *self-tested* (probe rows built from its own schema must give finite
probabilities that add up to one); only then does the ``current`` link switch, atomically, and the
link ``previous`` keeps the version it replaced. An update that fails its self-test is deleted and
``current`` never moves. :func:`rollback` goes back to ``previous`` by hand.

Layout of a device folder::

    device/
      versions/<name>-v<version>-<sha8>/   verified bundle copies
      current -> versions/...              what ``serve`` loads
      previous -> versions/...             the version before (for rollback)
      update.log                           one JSON line per attempt: accepted, refused (with why)

Standard library + the edge runtime only, like the rest of the device side.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shipml.bundle import SUMS_FILE, verify_bundle
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
    proba = np.asarray(predictor.predict_proba(validation.columns), dtype=np.float64)
    n_classes = len(predictor.metadata.class_labels)
    if proba.shape != (len(columns[predictor.schema.names[0]]), n_classes):
        raise BundleError(f"self-test: probabilities of shape {proba.shape}, expected (rows, {n_classes})")
    if not np.isfinite(proba).all() or (proba < -1e-6).any() or (proba > 1 + 1e-6).any():
        raise BundleError("self-test: the model returns probabilities outside [0, 1] (or NaN)")
    if not np.allclose(proba.sum(axis=1), 1.0, atol=1e-3):
        raise BundleError("self-test: the probabilities of a row do not add up to 1")


def _record(device: Path, event: dict[str, Any]) -> None:
    event = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **event}
    with open(device / LOG_FILE, "a") as f:
        f.write(json.dumps(event) + "\n")
    level = logging.INFO if event.get("accepted") else logging.WARNING
    log.log(level, "update %s: %s", "accepted" if event.get("accepted") else "refused", event.get("reason"))


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


def rollback(device: str | Path) -> Path:
    """Swap ``current`` and ``previous`` back; the version rolled back from stays as ``previous``."""
    device = Path(device)
    current, previous = _link(device, CURRENT), _link(device, PREVIOUS)
    if previous is None or not previous.is_dir():
        raise ShipmlError(f"{device}: no previous version to roll back to")
    _point(device, CURRENT, previous)
    if current is not None:
        _point(device, PREVIOUS, current)
    _record(device, {"accepted": True, "stage": "rollback", "reason": f"rolled back to {previous.name}"})
    return previous


def resolve_bundle(path: str | Path) -> Path:
    """A bundle folder as given, or the ``current`` version when ``path`` is a device folder."""
    path = Path(path)
    return current_bundle(path) if (path / CURRENT).is_symlink() or (path / VERSIONS).is_dir() else path


def watch_device(server: Any, device: str | Path, trusted_keys: Any = None, every: float = 2.0) -> None:
    """When ``device`` is a device folder, reload ``server.predictor`` whenever ``current`` moves.

    The new version is verified (signature, hashes) again as it is loaded; if that fails the server
    keeps answering with the version it has, and says why in the log.
    """
    import threading

    device = Path(device)
    if not (device / CURRENT).is_symlink():
        return
    served, refused = [current_bundle(device)], set()

    def loop() -> None:
        while True:
            time.sleep(every)
            now = None
            try:
                now = current_bundle(device)
                if now != served[0] and now not in refused:
                    server.predictor = OnnxPredictor.load(now, trusted_keys=trusted_keys)
                    served[0] = now
                    log.warning("now serving %s", now.name)
            except Exception as exc:  # keep serving what works; say why once
                refused.add(now)
                log.warning("not switching to the new current version: %s", exc)

    threading.Thread(target=loop, name="shipml-edge-watch", daemon=True).start()
