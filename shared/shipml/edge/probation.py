"""Probation after a live swap: the new model proves itself on real traffic, or the device rolls it back.

The self-test of :mod:`shipml.edge.update` runs an update on a few synthetic probe rows. Real traffic
covers more: a graph can raise, or return NaN, on rows the probes never tried. So when the serving
device swaps a new version in (``watch_device``), the new model is *on probation* for its first
``requests`` scored requests or ``seconds`` seconds, whichever ends first, and the version it replaced
stays loaded beside it:

* A request the new model fails — it raises, or its probabilities are not finite, outside [0, 1], do
  not add up to 1 or have the wrong shape (:func:`check_probabilities`) — is answered by the previous
  model (``200``, its ``version`` in the body and an ``X-Shipml-Fallback`` header), so during probation
  no valid request is lost to the new model, and counts as a **failure** of the new one. Only when the
  previous model fails on it too (or its schema refuses it) does the client get a ``500`` — the
  server's fault, never a ``4xx`` — and such a request counts neither way: what both versions fail
  says nothing against the update (more likely the input found a hole in validation).
* A client's bad request (invalid JSON, a missing field, ``hour=30``: any ``4xx``) is refused before
  any model runs: it is neither a failure nor one of the ``requests`` counted.
* Once more than ``max_failures`` requests failed (default 0: the first failure; a model that raises
  or answers NaN on a valid row is broken, not noisy), the device **rolls back**: ``current`` points
  back at the previous version atomically (:func:`shipml.edge.update.rollback`), the previous model —
  already in memory — serves every later request without a restart, and ``update.log`` gets one JSON
  line with ``"stage": "auto_rollback"`` saying what failed and how many of how many requests.
* Otherwise probation ends, the previous model is released and ``update.log`` says
  ``"stage": "probation"``, passed. After probation a failing request gets a ``500``.

Settings: :class:`ProbationSettings` (``SHIPML_EDGE_PROBATION_REQUESTS`` / ``_SECONDS`` /
``_MAX_FAILURES``, or ``serve --probation-requests/--probation-seconds/--probation-max-failures``).
Standard library + numpy, like the rest of the device side.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipml.errors import ShipmlError

ENV_PREFIX = "SHIPML_EDGE_PROBATION_"


class ModelFailure(Exception):
    """The model could not score valid rows: the server's fault (5xx), never the client's.

    ``reason`` is short and safe to show a client; ``detail`` (e.g. onnxruntime's message) is for the log.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class ProbationSettings:
    """How long a freshly swapped model is watched, and how many failures it may have."""

    requests: int = 1000
    """scored requests the new model must answer (0 = no probation)"""
    seconds: float = 600.0
    """... or this many seconds after the swap, whichever comes first (0 = no probation)"""
    max_failures: int = 0
    """failed requests tolerated; one more rolls back"""

    def __post_init__(self) -> None:
        for name in ("requests", "seconds", "max_failures"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0 or value != value:
                raise ShipmlError(f"probation {name.replace('_', ' ')} must be a number >= 0, got {value!r}")

    @property
    def enabled(self) -> bool:
        return self.requests > 0 and self.seconds > 0

    def describe(self) -> str:
        return (f"{self.requests} requests or {self.seconds:g} s, at most {self.max_failures} failure(s)"
                if self.enabled else "off")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ProbationSettings:
        """Defaults, then ``SHIPML_EDGE_PROBATION_*`` variables, then ``overrides`` that are not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, kind, what in (("requests", int, "an integer"), ("seconds", float, "a number"),
                                 ("max_failures", int, "an integer")):
            text = environ.get(ENV_PREFIX + name.upper())
            if text is not None and text.strip():
                try:
                    values[name] = kind(text)
                except ValueError:
                    raise ShipmlError(f"{ENV_PREFIX}{name.upper()}={text!r} is not {what}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def check_probabilities(proba: Any, rows: int, n_classes: int) -> np.ndarray:
    """``proba`` as float64 if it is a sane answer for ``rows`` rows, else :class:`ModelFailure` saying what."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (rows, n_classes):
        raise ModelFailure(f"returned probabilities of shape {proba.shape}, expected ({rows}, {n_classes})")
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        raise ModelFailure(f"returned non-finite probabilities (NaN or inf) for {int(bad.sum())} of {rows} rows")
    bad = ((proba < -1e-6) | (proba > 1 + 1e-6)).any(axis=1)
    if bad.any():
        raise ModelFailure(f"returned probabilities outside [0, 1] for {int(bad.sum())} of {rows} rows")
    bad = ~np.isclose(proba.sum(axis=1), 1.0, atol=1e-3)
    if bad.any():
        raise ModelFailure(f"returned probabilities that do not add up to 1 for {int(bad.sum())} of {rows} rows")
    return proba


def score_checked(predictor: Any, columns: Any) -> np.ndarray:
    """The predictor's probabilities for valid ``columns``; any exception or insane answer is a ModelFailure."""
    rows = len(columns[predictor.schema.names[0]])
    try:
        proba = predictor.predict_proba(columns)
    except Exception as exc:  # onnxruntime's own types (Fail, InvalidArgument, ...) are not importable portably
        text = str(exc).strip()
        raise ModelFailure(f"raised {type(exc).__name__}", text.splitlines()[0][:300] if text else "") from exc
    return check_probabilities(proba, rows, len(predictor.metadata.class_labels))


class Probation:
    """The counter of one swapped-in version; ``record`` after each scored request decides its fate.

    ``on_rollback(reason)`` runs once, when failures exceed the limit; ``on_pass(reason)`` once, when the
    window ends first. Both run in the thread that ended probation, outside the lock.
    """

    def __init__(self, candidate: str, fallback: Any, settings: ProbationSettings,
                 on_rollback: Callable[[Probation, str], None], on_pass: Callable[[Probation, str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.candidate, self.fallback, self.settings = candidate, fallback, settings
        self._on_rollback, self._on_pass, self._clock = on_rollback, on_pass, clock
        self.started = clock()
        self.requests = self.failures = 0
        self.reasons: dict[str, int] = {}
        self.outcome: str | None = None  # "passed", "rolled back" or "superseded"
        self._lock = threading.Lock()

    @property
    def elapsed(self) -> float:
        return self._clock() - self.started

    def record(self, failure: str | None = None) -> None:
        """Count one scored request (``failure``: why the new model failed it, None when it answered)."""
        with self._lock:
            if self.outcome is not None:
                return
            self.requests += 1
            if failure is not None:
                self.failures += 1
                self.reasons[failure] = self.reasons.get(failure, 0) + 1
            if self.failures > self.settings.max_failures:
                self.outcome = "rolled back"
            elif self.requests >= self.settings.requests or self.elapsed >= self.settings.seconds:
                self.outcome = "passed"
            else:
                return
            reason = self._summary()
        (self._on_rollback if self.outcome == "rolled back" else self._on_pass)(self, reason)

    def expire(self) -> None:
        """End a probation whose time is up although too few requests came (the watcher calls this)."""
        with self._lock:
            if self.outcome is not None or self.elapsed < self.settings.seconds:
                return
            self.outcome = "passed"
            reason = self._summary()
        self._on_pass(self, reason)

    def supersede(self) -> None:
        """Another version was swapped in before this one finished its probation."""
        with self._lock:
            if self.outcome is None:
                self.outcome = "superseded"

    def _summary(self) -> str:
        counted = (f"{self.failures} of {self.requests} request(s) failed in {self.elapsed:.1f} s "
                   f"(at most {self.settings.max_failures} allowed)")
        if self.outcome == "rolled back":
            why = "; ".join(f"{reason} ({n}x)" for reason, n in self.reasons.items())
            return f"{self.candidate} failed on live traffic during probation: {counted}: the model {why}"
        return f"{self.candidate} passed probation: {counted}"

    def status(self) -> dict[str, Any]:
        """What ``GET /health`` shows while the probation runs."""
        return {"candidate": self.candidate, "requests": self.requests, "of": self.settings.requests,
                "failures": self.failures, "max_failures": self.settings.max_failures,
                "seconds_left": round(max(0.0, self.settings.seconds - self.elapsed), 1),
                "fallback_version": self.fallback.version}


@dataclass(frozen=True)
class Serving:
    """What the device serves right now: one object, replaced whole, so a request sees one consistent pair."""

    predictor: Any
    probation: Probation | None = None
