"""Progressive delivery in the server: a candidate version beside the stable one, judged on live traffic.

Per model, a **rollout** has a stable and a candidate version and a policy:

* ``canary`` — a ``share`` of the requests that name no version is answered by the candidate. Sticky:
  a request carrying ``X-Client-Key`` (or, failing that, an API key: its id) always lands on the same
  side — a hash of the key, the model and the candidate version, compared with the share — so one
  customer does not flip between two models. Requests without a key are split at random.
* ``shadow`` — every such request is answered by the stable version; afterwards the candidate scores
  the same rows in a thread of its own (``shipml-shadow``), at most ``shadow_queue`` requests behind
  (beyond that the comparison is dropped and counted: the stable path never waits for the candidate,
  and a candidate that raises only fails its own comparison). Both scores are compared and logged.

Every answer says which version gave it (``version`` on ``/predict``, ``model_version`` in v2).
After each request the candidate answered (or scored in the shadow) the rollout records, per version,
success, scoring time and the positive-class score, and — after a failure, every 10th request and at
``min_requests`` — asks :func:`shipml.release.analysis.analyse`. ``abort`` routes everything back to
stable at once (the rollback) and records why; ``promote`` makes the candidate what unversioned
requests get. A version named in the request (``?version=``, ``/versions/{v}``) is never rerouted.

Configured through the admin routes (``/admin/models/{name}/rollout``: always behind the API key; with
no key configured they answer 403, disabled) or, for every new version, through settings:
``SHIPML_ROLLOUT_POLICY=canary`` makes a newly loaded version of a served model a candidate instead of
the default. State lives in the server process: with ``--workers N`` each worker runs its own rollout
(use the settings then, or one worker). A rollback lasts until the next rollout of that model; remove
or replace the bad version's folder to make it permanent across restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi import Path as PathParam
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field

from shipml.release.analysis import CanaryBounds, Verdict, VersionStats, analyse
from shipml.serving.errors import ApiError
from shipml.serving.metrics import LATENCY_BUCKETS
from shipml.serving.schemas import ErrorResponse

if TYPE_CHECKING:
    from shipml.serving.repository import ModelRepository, ServedModel
    from shipml.settings import Settings

log = logging.getLogger("shipml.serving")

CLIENT_KEY_HEADER = b"x-client-key"
SCORE_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
State = Literal["none", "running", "promoted", "aborted", "rolled_back"]
Scorer = Callable[["ServedModel", dict[str, Any]], Awaitable[tuple[list[list[float]], list[int]]]]


def bucket(key: str, model: str, candidate: int) -> float:
    """Where a client key falls in [0, 1): below the share means the candidate (same key, same side)."""
    digest = hashlib.sha256(f"{model}\x00{candidate}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


# ---- the admin API's bodies -------------------------------------------------------------------------


class RolloutRequest(BaseModel):
    """Start a rollout: which version is the candidate, against which stable, how."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"candidate": 2, "policy": "canary", "share": 0.1, "bounds": {"min_requests": 100}}]})

    candidate: int = Field(ge=0, description="the new version (already loaded from the repository)")
    stable: int | None = Field(None, ge=0, description="the version to compare with (default: the one serving now, "
                                 "or the highest below the candidate when the candidate serves already)")
    policy: Literal["canary", "shadow"] = Field("canary", description="canary: a share answers; shadow: scores aside")
    share: float = Field(0.1, gt=0.0, le=0.5, description="canary: share of requests the candidate answers")
    bounds: CanaryBounds | None = Field(None, description="analysis bounds (default: from the server's settings)")
    auto: bool = Field(True, description="promote or abort automatically (false: observe; decide by hand)")


class ShadowPair(BaseModel):
    """One request scored by both versions in shadow mode (first row's positive-class score)."""

    request_id: str
    rows: int
    stable_score: float
    candidate_score: float
    same_label: bool


class RolloutEvent(BaseModel):
    """How a past rollout ended."""

    state: State
    policy: str
    stable: int
    candidate: int
    reason: str
    candidate_requests: int
    candidate_client_errors: int
    ended_at: float


class RolloutStatus(BaseModel):
    """A model's rollout: what runs, what the analysis says, how past ones ended."""

    model: str
    state: State
    serving: int | None = Field(None, description="version requests without a version get (besides the canary)")
    policy: Literal["canary", "shadow"] | None = None
    share: float | None = None
    stable: int | None = None
    candidate: int | None = None
    auto: bool = True
    bounds: CanaryBounds | None = None
    verdict: Verdict | None = None
    reason: str | None = Field(None, description="why it was promoted, aborted or rolled back")
    candidate_client_errors: int = Field(0, description="failed candidate answers clients received (canary)")
    shadow_compared: int = 0
    shadow_dropped: int = Field(0, description="shadow comparisons skipped because the candidate lagged behind")
    shadow_label_disagreements: int = 0
    shadow_mean_abs_diff: float | None = None
    recent_shadow: list[ShadowPair] = Field(default_factory=list, description="the last 200 shadow comparisons")
    started_at: float | None = None
    ended_at: float | None = None
    history: list[RolloutEvent] = Field(default_factory=list)


# ---- one rollout ------------------------------------------------------------------------------------


class Rollout:
    """A running (or finished) rollout of one model; counts under ``lock`` (event loop and shadow thread)."""

    def __init__(self, model: str, stable: int, candidate: int, policy: str, share: float, bounds: CanaryBounds,
                 auto: bool, metrics: RolloutMetrics) -> None:
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
        self.started_at, self.ended_at = time.time(), None
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
            if role != "candidate" or not self.auto:
                return
            n = stats.requests
            if ok and n % 10 and n != self.bounds.min_requests:
                return
            self.verdict = verdict = analyse(self.stats["stable"], stats, self.bounds)
        if verdict.decision != "continue":
            self.end("promoted" if verdict.decision == "promote" else "aborted", "; ".join(verdict.reasons))

    def end(self, state: State, reason: str) -> bool:
        """Finish the rollout (promoted, aborted, rolled back); False if it had already ended."""
        with self.lock:
            if not self.running:
                return False
            self.state, self.reason, self.ended_at = state, reason, time.time()
            self.verdict = analyse(self.stats["stable"], self.stats["candidate"], self.bounds)
        self.metrics.decisions.labels(self.model, state).inc()
        log.log(logging.WARNING if state != "promoted" else logging.INFO, f"rollout {state}",
                extra={"model": self.model, "stable": self.stable, "candidate": self.candidate, "policy": self.policy,
                       "reason": reason, "candidate_requests": self.stats["candidate"].requests,
                       "candidate_client_errors": self.client_errors})
        if self.on_end is not None:
            self.on_end(self)
        return True

    def status(self, serving: int | None, history: list[RolloutEvent]) -> RolloutStatus:
        with self.lock:
            verdict = self.verdict or analyse(self.stats["stable"], self.stats["candidate"], self.bounds)
            compared = self.shadow_compared
            return RolloutStatus(
                model=self.model, state=self.state, serving=serving, policy=self.policy,  # type: ignore[arg-type]
                share=self.share if self.policy == "canary" else None, stable=self.stable, candidate=self.candidate,
                auto=self.auto, bounds=self.bounds, verdict=verdict, reason=self.reason,
                candidate_client_errors=self.client_errors, shadow_compared=compared,
                shadow_dropped=self.shadow_dropped, shadow_label_disagreements=self.shadow_disagreements,
                shadow_mean_abs_diff=round(self.shadow_abs_diff / compared, 6) if compared else None,
                recent_shadow=list(self.recent), started_at=self.started_at, ended_at=self.ended_at,
                history=history)

    def event(self) -> RolloutEvent:
        return RolloutEvent(state=self.state, policy=self.policy, stable=self.stable, candidate=self.candidate,
                            reason=self.reason or "", candidate_requests=self.stats["candidate"].requests,
                            candidate_client_errors=self.client_errors, ended_at=self.ended_at or time.time())


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


# ---- shadow scoring ----------------------------------------------------------------------------------


class ShadowScorer:
    """Scores requests with the candidate in one thread of its own, never more than ``limit`` behind."""

    def __init__(self, repo_of: Callable[[], ModelRepository | None], limit: int, model_threads: int) -> None:
        self.repo_of = repo_of
        self.limit = limit
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="shipml-shadow", initializer=_limit_threads,
                                           initargs=(model_threads,))

    def submit(self, r: Rollout, request_id: str, columns: dict[str, Any], stable_proba: list[list[float]],
               stable_index: list[int]) -> None:
        with r.lock:
            if r.shadow_inflight >= self.limit:
                r.shadow_dropped += 1
                r.metrics.shadow_dropped.labels(r.model).inc()
                return
            r.shadow_inflight += 1
        try:
            self.executor.submit(self._compare, r, request_id, columns, stable_proba, stable_index)
        except RuntimeError:  # shutting down
            with r.lock:
                r.shadow_inflight -= 1

    def _compare(self, r: Rollout, request_id: str, columns: dict[str, Any], stable_proba: list[list[float]],
                 stable_index: list[int]) -> None:
        try:
            repo = self.repo_of()
            if repo is None or not r.running:
                return
            candidate = repo.get(r.model, r.candidate)
            started = time.perf_counter()
            try:
                proba = np.asarray(candidate.predictor.predict_proba(columns), dtype=np.float64)
            except Exception as exc:
                r.record("candidate", False, time.perf_counter() - started, [])
                log.warning("shadow candidate failed", extra={"model": r.model, "version": r.candidate,
                                                              "request_id": request_id, "error": type(exc).__name__})
                return
            seconds = time.perf_counter() - started
            stable = np.asarray(stable_proba, dtype=np.float64)
            cand_labels = candidate.predictor.decide(proba)
            stable_labels = np.asarray(stable_index)
            diff = float(np.abs(proba[:, -1] - stable[:, -1]).mean())
            same = bool((cand_labels == stable_labels).all())
            with r.lock:
                r.shadow_compared += 1
                r.shadow_abs_diff += diff
                r.shadow_disagreements += int((cand_labels != stable_labels).sum())
                r.recent.append(ShadowPair(request_id=request_id, rows=len(proba), stable_score=float(stable[0, -1]),
                                           candidate_score=float(proba[0, -1]), same_label=same))
            log.info("shadow comparison", extra={"model": r.model, "stable": r.stable, "candidate": r.candidate,
                                                 "request_id": request_id, "rows": len(proba),
                                                 "stable_score": round(float(stable[0, -1]), 6),
                                                 "candidate_score": round(float(proba[0, -1]), 6),
                                                 "same_label": same})
            r.record("candidate", True, seconds, proba[:, -1].tolist())
        except Exception:  # the shadow must never take the server down
            log.exception("shadow comparison failed", extra={"model": r.model})
        finally:
            with r.lock:
                r.shadow_inflight -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _limit_threads(n: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)


# ---- the extension -----------------------------------------------------------------------------------


class RolloutExtension:
    """Routes unversioned requests during rollouts, runs the analysis, serves ``/admin/models/{name}/rollout``."""

    name = "rollout"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin_enabled = bool(settings.api_key_value() or getattr(settings, "api_key_file", None))
        self.auto_policy: str = settings.rollout_policy
        self.rollouts: dict[str, Rollout] = {}  # running or last finished, per model
        self.pins: dict[str, int] = {}  # model -> version unversioned requests get (after a rollback or promotion)
        self.serving: dict[str, int] = {}  # model -> last version seen as its default (for rollout_policy)
        self.history: dict[str, deque[RolloutEvent]] = {}
        self._random = random.Random()
        self.app: FastAPI | None = None
        self.metrics: RolloutMetrics | None = None
        self.shadow: ShadowScorer | None = None

    def default_bounds(self) -> CanaryBounds:
        s = self.settings
        return CanaryBounds(min_requests=s.rollout_min_requests,
                            max_error_increase=s.rollout_max_error_increase,
                            max_score_shift=s.rollout_max_score_shift)

    # -- extension hooks
    def install(self, app: FastAPI) -> None:
        self.app = app
        self.metrics = RolloutMetrics(app.state.metrics.registry)
        app.state.rollouts = self
        app.include_router(admin_router(self))

    async def startup(self, app: FastAPI) -> None:
        self.shadow = ShadowScorer(lambda: app.state.repository, self.settings.rollout_shadow_queue,
                                   self.settings.model_threads)
        app.state.repository.listeners.append(self._models_changed)

    async def shutdown(self, app: FastAPI) -> None:
        for r in self.rollouts.values():
            if r.running:
                r.end("rolled_back", "the server stopped")
        if self.shadow is not None:
            await asyncio.to_thread(self.shadow.close)

    def _models_changed(self, added: list[Any], removed: list[Any]) -> None:
        repo = self.app.state.repository if self.app else None
        if repo is not None and not repo.loaded_once:  # the first load: what is served is the baseline
            for m in added:
                self.serving[m.name] = max(self.serving.get(m.name, -1), m.version)

    # -- routing (the hot path: one dict look-up when nothing rolls out)
    def choose(self, request: Request, repo: ModelRepository, name: str) -> ServedModel:
        """The version an unversioned request for ``name`` gets; under a rollout the request's scope
        carries the :class:`Arm` it was routed to."""
        r = self.rollouts.get(name)
        if r is not None and r.running:
            try:
                if r.policy == "canary" and self._is_canary(request, r):
                    request.scope["shipml.rollout"] = Arm(r, "candidate")
                    return repo.get(name, r.candidate)
                served = repo.get(name, r.stable)
            except ApiError as exc:  # a version of the rollout left the repository
                self._end(r, "rolled_back", f"a version of the rollout is no longer served: {exc.message}")
                return self.choose(request, repo, name)
            request.scope["shipml.rollout"] = Arm(r, "stable", self.shadow if r.policy == "shadow" else None)
            return served
        pinned = self.pins.get(name)
        if pinned is not None and pinned not in repo.versions(name):
            del self.pins[name]
            pinned = None
        served = repo.get(name)
        if self.auto_policy != "off":
            known = self.serving.get(name)  # the newest version released so far
            current = pinned if pinned is not None else known
            if known is None:
                self.serving[name] = served.version
            elif served.version > known:
                if current in repo.versions(name):
                    self.start(repo, name, RolloutRequest(candidate=served.version, stable=current,
                                                          policy=self.auto_policy,  # type: ignore[arg-type]
                                                          share=self.settings.rollout_share))
                    return self.choose(request, repo, name)
                self.serving[name] = served.version  # nothing left to compare it with: it serves
            elif served.version < known and pinned is None:  # the newest folder was removed
                self.serving[name] = served.version
        return served if pinned is None else repo.get(name, pinned)

    def _is_canary(self, request: Request, r: Rollout) -> bool:
        key = None
        for header, value in request.scope["headers"]:
            if header == CLIENT_KEY_HEADER:
                key = value.decode("latin-1")[:200]
                break
        if key is None:
            key = request.scope.get("shipml.caller")
        if key is None:
            return self._random.random() < r.share
        return bucket(key, r.model, r.candidate) < r.share

    # -- control
    def current(self, repo: ModelRepository, name: str) -> int:
        r = self.rollouts.get(name)
        if r is not None and r.running:
            return r.stable
        pinned = self.pins.get(name)
        if pinned is not None and pinned in repo.versions(name):
            return pinned
        return repo.get(name).version

    def start(self, repo: ModelRepository, name: str, body: RolloutRequest) -> Rollout:
        versions = repo.versions(name)  # 404 for an unknown model
        r = self.rollouts.get(name)
        if r is not None and r.running:
            raise ApiError(409, f"a rollout of '{name}' is running (stable {r.stable}, candidate {r.candidate}): "
                                "promote it or DELETE it first")
        stable = body.stable
        if stable is None:  # the version serving now; if that is the candidate already, the one before it
            stable = self.current(repo, name)
            if stable == body.candidate and any(v < body.candidate for v in versions):
                stable = max(v for v in versions if v < body.candidate)
        for what, v in (("candidate", body.candidate), ("stable", stable)):
            if v not in versions:
                raise ApiError(404, f"{what} version {v} of '{name}' is not served; served versions: "
                                    f"{', '.join(map(str, versions))}")
        if stable == body.candidate:
            raise ApiError(422, f"candidate and stable are the same version ({stable}): name another candidate")
        assert self.metrics is not None
        r = Rollout(name, stable, body.candidate, body.policy, body.share, body.bounds or self.default_bounds(),
                    body.auto, self.metrics)
        r.on_end = self._ended
        self.rollouts[name] = r
        self.serving[name] = max(self.serving.get(name, -1), body.candidate)
        log.info("rollout started", extra={"model": name, "stable": stable, "candidate": body.candidate,
                                           "policy": body.policy, "share": body.share})
        return r

    def _end(self, r: Rollout, state: State, reason: str) -> None:
        r.end(state, reason)

    def _ended(self, r: Rollout) -> None:
        """Where unversioned requests go after ``r``: the candidate if promoted, else the stable."""
        self.pins[r.model] = r.candidate if r.state == "promoted" else r.stable
        self.history.setdefault(r.model, deque(maxlen=20)).appendleft(r.event())

    def status(self, repo: ModelRepository, name: str) -> RolloutStatus:
        repo.versions(name)  # 404 for an unknown model
        try:
            serving = self.current(repo, name)
        except ApiError:
            serving = None
        history = list(self.history.get(name, ()))
        r = self.rollouts.get(name)
        if r is None:
            return RolloutStatus(model=name, state="none", serving=serving, history=history)
        return r.status(serving, history)


# ---- the admin routes --------------------------------------------------------------------------------

ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in [
        (401, "missing or wrong API key"), (403, "admin routes disabled: the server has no API key"),
        (404, "unknown model or version"), (409, "a rollout is (not) running"), (422, "invalid body")]}


def admin_router(ext: RolloutExtension) -> APIRouter:
    """``/admin/models/{name}/rollout``: documented only where enabled (an API key is configured)."""

    async def admin(request: Request) -> ModelRepository:
        if not ext.admin_enabled:
            raise ApiError(403, "admin routes are disabled: they need an API key (set SHIPML_API_KEY or "
                                "SHIPML_API_KEY_FILE)")
        if request.scope.get("shipml.caller") is None:  # the middleware checked it; never trust a gap
            raise ApiError(401, "missing API key: send it in the X-API-Key header")
        repo = getattr(request.app.state, "repository", None)
        if repo is None:
            raise ApiError(503, "the server is starting; the model repository is not open yet")
        return repo

    router = APIRouter(prefix="/admin", tags=["admin"], responses=ADMIN_ERRORS,
                       include_in_schema=ext.admin_enabled)
    name_p = PathParam(description="model name", max_length=200)

    @router.get("/models/{name}/rollout", response_model=RolloutStatus, summary="A model's rollout")
    async def get_rollout(repo: ModelRepository = Depends(admin), name: str = name_p) -> RolloutStatus:
        """What runs (stable, candidate, policy), the analysis' current verdict, how past rollouts ended."""
        return ext.status(repo, name)

    @router.put("/models/{name}/rollout", response_model=RolloutStatus, summary="Start a canary or shadow rollout")
    async def put_rollout(body: RolloutRequest, repo: ModelRepository = Depends(admin),
                          name: str = name_p) -> RolloutStatus:
        """Release a loaded version as a candidate; with ``auto`` the analysis promotes or aborts it."""
        ext.start(repo, name, body)
        return ext.status(repo, name)

    @router.post("/models/{name}/rollout/promote", response_model=RolloutStatus, summary="Promote the candidate")
    async def promote_rollout(repo: ModelRepository = Depends(admin), name: str = name_p) -> RolloutStatus:
        """Make the running rollout's candidate what requests without a version get (by hand)."""
        _running(ext, repo, name).end("promoted", "promoted by hand (admin API)")
        return ext.status(repo, name)

    @router.delete("/models/{name}/rollout", response_model=RolloutStatus, summary="Roll back to stable")
    async def delete_rollout(repo: ModelRepository = Depends(admin), name: str = name_p) -> RolloutStatus:
        """Stop the running rollout; every request goes to the stable version again."""
        _running(ext, repo, name).end("rolled_back", "rolled back by hand (admin API)")
        return ext.status(repo, name)

    return router


def _running(ext: RolloutExtension, repo: ModelRepository, name: str) -> Rollout:
    repo.versions(name)
    r = ext.rollouts.get(name)
    if r is None or not r.running:
        raise ApiError(409, f"no rollout of '{name}' is running (GET /admin/models/{name}/rollout shows the last one)")
    return r
