"""One rollout: which side a request lands on, what each version did, when the analysis decides."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram

from shipml.release.analysis import CanaryBounds, Verdict, VersionStats, analyse
from shipml.serving.errors import ApiError
from shipml.serving.metrics import LATENCY_BUCKETS
from shipml.serving.rollout.models import RolloutEvent, RolloutStatus, ShadowPair, State

if TYPE_CHECKING:
    from shipml.serving.repository import ServedModel

log = logging.getLogger("shipml.serving")

SCORE_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
Scorer = Callable[["ServedModel", dict[str, Any]], Awaitable[tuple[list[list[float]], list[int]]]]


def bucket(key: str, model: str, candidate: int) -> float:
    """Where a client key falls in [0, 1): below the share means the candidate (same key, same side)."""
    digest = hashlib.sha256(f"{model}\x00{candidate}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


# ---- what a rollout counted ------------------------------------------------------------------------


@dataclass
class Totals:
    """What one worker (or, added up, every worker) counted in a rollout: the analysis' inputs and the rest."""

    stable: VersionStats
    candidate: VersionStats
    client_errors: int = 0
    shadow_compared: int = 0
    shadow_dropped: int = 0
    shadow_disagreements: int = 0
    shadow_abs_diff: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain numbers (what a worker publishes for the others: :mod:`shipml.serving.rollout.shared`)."""
        sides = {role: {"requests": s.requests, "errors": s.errors, "latencies_ms": s.latencies_ms.round(4).tolist(),
                        "scores": s.scores.round(6).tolist()} for role, s in (("stable", self.stable),
                                                                                ("candidate", self.candidate))}
        return {**sides, "client_errors": self.client_errors, "shadow_compared": self.shadow_compared,
                "shadow_dropped": self.shadow_dropped, "shadow_disagreements": self.shadow_disagreements,
                "shadow_abs_diff": self.shadow_abs_diff}

    @classmethod
    def added_up(cls, stable: int, candidate: int, parts: Iterable[dict[str, Any]]) -> Totals:
        """The sum of several workers' :meth:`to_json` (samples concatenated)."""
        parts = list(parts)

        def side(role: str, version: int) -> VersionStats:
            got = [p[role] for p in parts]
            return VersionStats.from_samples(version, sum(g["requests"] for g in got), sum(g["errors"] for g in got),
                                             [x for g in got for x in g["latencies_ms"]],
                                             [x for g in got for x in g["scores"]], max_samples=2000 * len(parts))

        return cls(side("stable", stable), side("candidate", candidate),
                   *(sum(p[k] for p in parts) for k in ("client_errors", "shadow_compared", "shadow_dropped",
                                                        "shadow_disagreements", "shadow_abs_diff")))


# ---- one rollout ------------------------------------------------------------------------------------


class Rollout:
    """A running (or finished) rollout of one model; counts under ``lock`` (event loop and shadow thread)."""

    def __init__(self, model: str, stable: int, candidate: int, policy: str, share: float, bounds: CanaryBounds,
                 auto: bool, metrics: RolloutMetrics, *, rollout_id: str | None = None,
                 started_at: float | None = None, judge: bool = True) -> None:
        """``judge=False``: never run the analysis here (with several workers it runs on everyone's counts)."""
        self.id = rollout_id or uuid.uuid4().hex[:16]
        self.judge = judge
        self.model, self.stable, self.candidate = model, stable, candidate
        self.policy, self.share, self.bounds, self.auto = policy, share, bounds, auto
        self.metrics = metrics
        self.stats = {"stable": VersionStats(stable), "candidate": VersionStats(candidate)}
        self.lock = threading.Lock()
        self.state: State = "running"
        self.reason: str | None = None
        self.verdict: Verdict | None = None
        self.client_errors = 0
        self.shadow_inflight = 0
        self.shadow_compared = self.shadow_dropped = self.shadow_disagreements = 0
        self.shadow_abs_diff = 0.0
        self.recent: deque[ShadowPair] = deque(maxlen=200)
        self.started_at, self.ended_at = started_at or time.time(), None
        self.on_end: Callable[[Rollout], None] | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def version_of(self, role: str) -> int:
        return self.candidate if role == "candidate" else self.stable

    def record(self, role: str, ok: bool, seconds: float, scores: list[float]) -> None:
        """One scored (or failed) request of ``role``; the analysis runs when it is due."""
        version = self.version_of(role)
        self.metrics.observe(self.model, version, role, ok, seconds, scores)
        with self.lock:
            if not self.running:
                return
            stats = self.stats[role]
            stats.record(ok, seconds * 1000.0, scores)
            if role != "candidate" or not self.auto or not self.judge:
                return
            n = stats.requests
            if ok and n % 10 and n != self.bounds.min_requests:
                return
            self.verdict = verdict = analyse(self.stats["stable"], stats, self.bounds)
        if verdict.decision != "continue":
            self.end("promoted" if verdict.decision == "promote" else "aborted", "; ".join(verdict.reasons))

    def end(self, state: State, reason: str, *, verdict: Verdict | None = None, ended_at: float | None = None,
            decided_here: bool = True) -> bool:
        """Finish the rollout (promoted, aborted, rolled back); False if it had already ended.

        ``decided_here=False``: another worker decided (and logged and counted the decision)."""
        with self.lock:
            if not self.running:
                return False
            self.state, self.reason, self.ended_at = state, reason, ended_at or time.time()
            self.verdict = verdict or analyse(self.stats["stable"], self.stats["candidate"], self.bounds)
        if decided_here:
            self.metrics.decisions.labels(self.model, state).inc()
            cand = self.verdict.candidate
            log.log(logging.WARNING if state != "promoted" else logging.INFO, f"rollout {state}",
                    extra={"model": self.model, "stable": self.stable, "candidate": self.candidate,
                           "policy": self.policy, "reason": reason, "candidate_requests": cand.requests,
                           "candidate_client_errors": self.client_errors})
        if self.on_end is not None:
            self.on_end(self)
        return True

    def progress(self) -> tuple[int, int, int, int]:
        """Cheap to read, and changes whenever the counts do."""
        return (self.stats["stable"].requests, self.stats["candidate"].requests, self.shadow_compared,
                self.shadow_dropped)

    def totals(self) -> Totals:
        """A copy of what this process counted (the stats' samples are copied)."""
        with self.lock:
            stats = [VersionStats.from_samples(s.version, s.requests, s.errors, s.latencies_ms, s.scores)
                     for s in (self.stats["stable"], self.stats["candidate"])]
            return Totals(*stats, self.client_errors, self.shadow_compared, self.shadow_dropped,
                          self.shadow_disagreements, self.shadow_abs_diff)

    def status(self, serving: int | None, history: list[RolloutEvent], totals: Totals | None = None,
               **extra: Any) -> RolloutStatus:
        """``totals``: every worker's counts added up (default: this process's)."""
        t = totals or self.totals()
        verdict = self.verdict or analyse(t.stable, t.candidate, self.bounds)
        compared = t.shadow_compared
        with self.lock:
            recent = list(self.recent)
        return RolloutStatus(
            model=self.model, state=self.state, serving=serving, policy=self.policy,  # type: ignore[arg-type]
            share=self.share if self.policy == "canary" else None, stable=self.stable, candidate=self.candidate,
            auto=self.auto, bounds=self.bounds, verdict=verdict, reason=self.reason,
            candidate_client_errors=t.client_errors, shadow_compared=compared,
            shadow_dropped=t.shadow_dropped, shadow_label_disagreements=t.shadow_disagreements,
            shadow_mean_abs_diff=round(t.shadow_abs_diff / compared, 6) if compared else None,
            recent_shadow=recent, started_at=self.started_at, ended_at=self.ended_at,
            history=history, **extra)

    def event(self, totals: Totals | None = None) -> RolloutEvent:
        t = totals or self.totals()
        return RolloutEvent(state=self.state, policy=self.policy, stable=self.stable, candidate=self.candidate,
                            reason=self.reason or "", candidate_requests=t.candidate.requests,
                            candidate_client_errors=t.client_errors, ended_at=self.ended_at or time.time())

    def spec(self) -> dict[str, Any]:
        """What every worker needs to run (or show) this rollout: plain JSON for the shared state file."""
        return {"id": self.id, "stable": self.stable, "candidate": self.candidate, "policy": self.policy,
                "share": self.share, "bounds": self.bounds.model_dump(mode="json"), "auto": self.auto,
                "started_at": self.started_at, "state": self.state, "reason": self.reason,
                "ended_at": self.ended_at, "verdict": self.verdict.model_dump(mode="json") if self.verdict else None}


class Arm:
    """The side one request was routed to; :func:`shipml.serving.routes_predict.predict_columns` scores through it."""

    __slots__ = ("rollout", "role", "shadow")

    def __init__(self, rollout: Rollout, role: str, shadow: Any = None) -> None:
        self.rollout, self.role, self.shadow = rollout, role, shadow

    async def score(self, request_id: str, served: ServedModel, columns: dict[str, Any], scorer: Scorer
                    ) -> tuple[list[list[float]], list[int]]:
        r = self.rollout
        started = time.perf_counter()
        try:
            proba, index = await scorer(served, columns)
        except Exception as exc:
            r.record(self.role, False, time.perf_counter() - started, [])
            if self.role != "candidate":
                raise
            with r.lock:
                r.client_errors += 1
            log.error("canary candidate failed on a request", exc_info=True,
                      extra={"model": r.model, "version": r.candidate, "stable": r.stable})
            raise ApiError(500, f"model '{r.model}' version {r.candidate} (a canary candidate) failed on this "
                                f"request ({type(exc).__name__}); the rollout counts it and rolls back to version "
                                f"{r.stable} when the candidate is clearly worse") from None
        r.record(self.role, True, time.perf_counter() - started, [row[-1] for row in proba])
        if self.shadow is not None:
            self.shadow.submit(r, request_id, columns, proba, index)
        return proba, index


# ---- metrics -----------------------------------------------------------------------------------------


class RolloutMetrics:
    """Per version and role: requests by outcome, scoring time, score distribution; decisions; shadow drops."""

    def __init__(self, registry: Any) -> None:
        self.requests = Counter("shipml_rollout_requests", "Requests scored in a rollout, by version, role, outcome",
                                ["model", "version", "role", "outcome"], registry=registry)
        self.seconds = Histogram("shipml_rollout_scoring_seconds", "Scoring time during a rollout, by version",
                                 ["model", "version", "role"], buckets=LATENCY_BUCKETS, registry=registry)
        self.scores = Histogram("shipml_rollout_score", "Positive-class score during a rollout, by version",
                                ["model", "version", "role"], buckets=SCORE_BUCKETS, registry=registry)
        self.decisions = Counter("shipml_rollout_decisions", "Rollouts ended, by how",
                                 ["model", "decision"], registry=registry)
        self.shadow_dropped = Counter("shipml_rollout_shadow_dropped", "Shadow comparisons skipped (candidate behind)",
                                      ["model"], registry=registry)

    def observe(self, model: str, version: int, role: str, ok: bool, seconds: float, scores: list[float]) -> None:
        v = str(version)
        self.requests.labels(model, v, role, "ok" if ok else "error").inc()
        if ok:
            self.seconds.labels(model, v, role).observe(seconds)
            hist = self.scores.labels(model, v, role)
            for s in scores:
                hist.observe(s)
