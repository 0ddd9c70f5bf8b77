"""Shadow scoring: the candidate scores what the stable answered, in a thread of its own, never far behind."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from shipml.serving.rollout.models import ShadowPair
from shipml.serving.rollout.state import Rollout

if TYPE_CHECKING:
    from shipml.serving.repository import ModelRepository

log = logging.getLogger("shipml.serving")


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
