"""The server extension: routes unversioned requests during rollouts, starts and ends them, serves the admin API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi import Path as PathParam

from shipml.release.analysis import CanaryBounds, Verdict, analyse
from shipml.serving.errors import ApiError
from shipml.serving.rollout.models import RolloutEvent, RolloutRequest, RolloutStatus, State, WorkerCounts
from shipml.serving.rollout.shadow import ShadowScorer
from shipml.serving.rollout.shared import SYNC_SECONDS, SharedState, shared_folder
from shipml.serving.rollout.state import Arm, Rollout, RolloutMetrics, Totals, bucket
from shipml.serving.schemas import ErrorResponse

if TYPE_CHECKING:
    from shipml.serving.repository import ModelRepository, ServedModel
    from shipml.settings import Settings

log = logging.getLogger("shipml.serving")

CLIENT_KEY_HEADER = b"x-client-key"


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
        # with several workers: the state every worker shares (files), this worker's sync task
        self.shared: SharedState | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._published: dict[str, tuple[int, ...]] = {}  # rollout id -> what this worker published last
        self._judged: dict[str, int] = {}  # rollout id -> requests of every worker when last analysed

    def default_bounds(self) -> CanaryBounds:
        s = self.settings
        return CanaryBounds(min_requests=s.rollout_min_requests,
                            max_error_increase=s.rollout_max_error_increase,
                            max_score_shift=s.rollout_max_score_shift,
                            max_latency_ratio=s.rollout_max_latency_ratio,
                            latency_slack_ms=s.rollout_latency_slack_ms)

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
        folder = shared_folder()
        if folder is not None:  # several workers: the rollouts live in the server's shared folder
            self.shared = SharedState(folder)
            self.apply(self.shared.read())
            self._sync_task = asyncio.create_task(self._sync_forever(), name="shipml-rollout-sync")

    async def shutdown(self, app: FastAPI) -> None:
        if self._sync_task is not None:  # the other workers go on (the server removes the folder at the end)
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        else:
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
        if self.shared is not None:  # a version of a running rollout left the repository: end it everywhere
            for m in removed:
                r = self.rollouts.get(m.name)
                if r is not None and r.running and m.version in (r.stable, r.candidate):
                    self._end(r, "rolled_back", f"version {m.version} of the rollout left the repository")

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
                if self.shared is not None:  # or is not loaded by this worker yet: the others go on
                    return repo.get(name)
                self._end(r, "rolled_back", f"a version of the rollout is no longer served: {exc.message}")
                return self.choose(request, repo, name)
            request.scope["shipml.rollout"] = Arm(r, "stable", self.shadow if r.policy == "shadow" else None)
            return served
        pinned = self.pins.get(name)
        if pinned is None and r is not None:  # ended a moment ago (in the shadow thread): its pin is on its way
            pinned = r.candidate if r.state == "promoted" else r.stable
        if pinned is not None and pinned not in repo.versions(name):
            self.pins.pop(name, None)
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
                                                          share=self.settings.rollout_share), adopt=True)
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

    def start(self, repo: ModelRepository, name: str, body: RolloutRequest, adopt: bool = False) -> Rollout:
        """Start a rollout (409 if one runs). ``adopt``: released by the settings' policy — with several
        workers, another worker may have released the same candidate already: take that one."""
        versions = repo.versions(name)  # 404 for an unknown model
        r = self.rollouts.get(name)
        if r is not None and r.running:
            _conflict(name, r.stable, r.candidate)
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
                    body.auto, self.metrics, judge=self.shared is None)
        r.on_end = self._ended
        if self.shared is not None:
            return self._start_shared(r, adopt)
        self.rollouts[name] = r
        self.serving[name] = max(self.serving.get(name, -1), body.candidate)
        log.info("rollout started", extra={"model": name, "stable": stable, "candidate": body.candidate,
                                           "policy": body.policy, "share": body.share})
        return r

    def _end(self, r: Rollout, state: State, reason: str, verdict: Verdict | None = None) -> bool:
        """End ``r`` (in every worker when they share the state); False if it had ended already."""
        if self.shared is None:
            return r.end(state, reason)
        totals = self.totals(r)
        verdict = verdict or analyse(totals.stable, totals.candidate, r.bounds)
        with self.shared.update() as doc:  # the claim: only the worker that finds it running ends it
            entry = doc["models"].get(r.model)
            spec = entry["rollout"] if entry else None
            claimed = spec is not None and spec["id"] == r.id and spec["state"] == "running"
            if claimed:
                ended_at = time.time()
                spec.update(state=state, reason=reason, ended_at=ended_at, verdict=verdict.model_dump(mode="json"))
                event = RolloutEvent(state=state, policy=r.policy, stable=r.stable, candidate=r.candidate,
                                     reason=reason, candidate_requests=totals.candidate.requests,
                                     candidate_client_errors=totals.client_errors, ended_at=ended_at)
                entry["history"] = [event.model_dump(mode="json"), *entry["history"][:19]]
        if claimed:
            r.end(state, reason, verdict=verdict, ended_at=ended_at)  # logged and counted here, once
        self.apply(doc)
        return claimed

    def _ended(self, r: Rollout) -> None:
        """Where unversioned requests go after ``r``: the candidate if promoted, else the stable."""
        self.pins[r.model] = r.candidate if r.state == "promoted" else r.stable
        if self.shared is None:  # else the history comes from the shared state
            self.history.setdefault(r.model, deque(maxlen=20)).appendleft(r.event())

    # -- several workers: the shared state (shipml.serving.rollout.shared)
    def _start_shared(self, r: Rollout, adopt: bool) -> Rollout:
        assert self.shared is not None
        with self.shared.update() as doc:
            entry = doc["models"].setdefault(r.model, {"rollout": None, "history": []})
            spec = entry["rollout"]
            if spec is not None and adopt and (spec["state"] == "running" or spec["candidate"] == r.candidate):
                pass  # another worker released this candidate already (or a rollout runs): take that one
            elif spec is not None and spec["state"] == "running":
                _conflict(r.model, spec["stable"], spec["candidate"])
            else:
                if spec is not None:
                    self.shared.forget(spec["id"])
                entry["rollout"] = r.spec()
        self.apply(doc)
        started = self.rollouts[r.model]
        if started.id == r.id:
            log.info("rollout started", extra={"model": r.model, "stable": r.stable, "candidate": r.candidate,
                                               "policy": r.policy, "share": r.share})
        return started

    def apply(self, doc: dict[str, Any]) -> None:
        """Make this worker's rollouts what the shared state says (idempotent: applied again, nothing changes)."""
        assert self.metrics is not None and self.shared is not None
        for name, entry in doc["models"].items():
            spec = entry["rollout"]
            if spec is None:
                continue
            r = self.rollouts.get(name)
            if r is None or r.id != spec["id"]:
                r = Rollout(name, spec["stable"], spec["candidate"], spec["policy"], spec["share"],
                            CanaryBounds.model_validate(spec["bounds"]), spec["auto"], self.metrics,
                            rollout_id=spec["id"], started_at=spec["started_at"], judge=False)
                r.on_end = self._ended
                self.rollouts[name] = r
                self.serving[name] = max(self.serving.get(name, -1), r.candidate)
            if spec["state"] != "running" and r.running:
                r.end(spec["state"], spec["reason"], verdict=Verdict.model_validate(spec["verdict"]),
                      ended_at=spec["ended_at"], decided_here=False)
            self.history[name] = deque((RolloutEvent.model_validate(e) for e in entry["history"]), maxlen=20)
        self.shared.applied(doc["generation"])

    async def settled(self) -> None:
        """After an admin change: wait (a second at most) until every worker has applied it."""
        if self.shared is None:
            return
        generation = self.shared.read()["generation"]
        deadline = time.monotonic() + 4 * SYNC_SECONDS
        while self.shared.lagging(generation) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def totals(self, r: Rollout) -> Totals:
        """What every worker counted in ``r``: this one's live numbers plus the others' published ones."""
        mine = r.totals()
        if self.shared is None:
            return mine
        return Totals.added_up(r.stable, r.candidate, [mine.to_json(), *self.shared.counts(r.id).values()])

    def sync(self) -> None:
        """Apply a changed shared state, publish this worker's counts, decide on everyone's (every SYNC_SECONDS)."""
        assert self.shared is not None
        doc = self.shared.changed()
        if doc is not None:
            self.apply(doc)
        for r in list(self.rollouts.values()):
            progress = r.progress()
            counts = None
            if self._published.get(r.id) != progress:  # ended ones too: their last requests count in the status
                counts = r.totals().to_json()
                self.shared.publish(r.id, counts)
                self._published[r.id] = progress
            if not (r.running and r.auto):
                continue
            others = self.shared.counts(r.id)
            n = sum(progress[:2]) + sum(c["stable"]["requests"] + c["candidate"]["requests"] for c in others.values())
            if self._judged.get(r.id) == n:  # nobody answered anything since the last analysis
                continue
            self._judged[r.id] = n
            totals = Totals.added_up(r.stable, r.candidate, [counts or r.totals().to_json(), *others.values()])
            verdict = analyse(totals.stable, totals.candidate, r.bounds)
            if verdict.decision != "continue":
                self._end(r, "promoted" if verdict.decision == "promote" else "aborted", "; ".join(verdict.reasons),
                          verdict)

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            try:
                self.sync()
            except Exception:  # a bad moment on the disk must not stop the syncing
                log.exception("rollout sync failed")

    def workers(self, r: Rollout) -> list[WorkerCounts]:
        """Each worker's requests in ``r`` (this one's live)."""
        assert self.shared is not None
        parts = {**self.shared.counts(r.id), os.getpid(): r.totals().to_json()}
        return [WorkerCounts(pid=pid, stable_requests=p["stable"]["requests"],
                             candidate_requests=p["candidate"]["requests"]) for pid, p in sorted(parts.items())]

    def refresh(self) -> None:
        """Before an admin request: this worker's rollouts as the shared state says now (several workers)."""
        if self.shared is not None:
            self.apply(self.shared.read())

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
        if self.shared is None:
            return r.status(serving, history)
        return r.status(serving, history, self.totals(r), worker=os.getpid(), workers=self.workers(r))


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
        ext.refresh()
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
        await ext.settled()
        return ext.status(repo, name)

    @router.post("/models/{name}/rollout/promote", response_model=RolloutStatus, summary="Promote the candidate")
    async def promote_rollout(repo: ModelRepository = Depends(admin), name: str = name_p) -> RolloutStatus:
        """Make the running rollout's candidate what requests without a version get (by hand)."""
        _ended_by_hand(ext, repo, name, "promoted", "promoted by hand (admin API)")
        await ext.settled()
        return ext.status(repo, name)

    @router.delete("/models/{name}/rollout", response_model=RolloutStatus, summary="Roll back to stable")
    async def delete_rollout(repo: ModelRepository = Depends(admin), name: str = name_p) -> RolloutStatus:
        """Stop the running rollout; every request goes to the stable version again."""
        _ended_by_hand(ext, repo, name, "rolled_back", "rolled back by hand (admin API)")
        await ext.settled()
        return ext.status(repo, name)

    return router


def _ended_by_hand(ext: RolloutExtension, repo: ModelRepository, name: str, state: State, reason: str) -> None:
    repo.versions(name)
    r = ext.rollouts.get(name)
    if r is None or not r.running or not ext._end(r, state, reason):
        raise ApiError(409, f"no rollout of '{name}' is running (GET /admin/models/{name}/rollout shows the last one)")


def _conflict(name: str, stable: int, candidate: int) -> None:
    raise ApiError(409, f"a rollout of '{name}' is running (stable {stable}, candidate {candidate}): "
                        "promote it or DELETE it first")
