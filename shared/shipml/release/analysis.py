"""Automated canary analysis: is a candidate version as good as the stable one, on live traffic?

A rollout records, per version, how many requests it answered, how many failed, how long scoring
took and which scores it gave (:class:`VersionStats`, bounded: the most recent ``max_samples``).
:func:`analyse` compares the candidate with the stable version against :class:`CanaryBounds` and
answers a :class:`Verdict`: ``continue`` (not enough evidence yet), ``promote`` or ``abort``, with a
reason a person can read.

The three checks, and why they are built this way:

* **errors** — the candidate's error ratio may exceed the stable's by at most ``max_error_increase``.
  Errors are the one thing that hurts clients *now*, so they do not wait for ``min_requests``: after
  every request a one-sided binomial test asks how likely the candidate's error count is if its true
  ratio were the largest one allowed; below ``alpha`` (0.1 % by default) the candidate is aborted at
  once. A model that fails on 30 % of inputs is stopped after a handful of failures, one that fails
  on everything after two or three; a single unlucky failure of a good model is not enough.
* **scores** — the distribution of the positive-class probability, compared with the two-sample
  Kolmogorov–Smirnov statistic D (the largest gap between the two empirical distribution functions).
  KS rather than PSI: scores are continuous, KS needs no binning, and its p-value accounts for how many
  samples there are — PSI on 50 canary requests is mostly noise. D itself is the size of the shift
  (0 = identical, 1 = disjoint), bounded by ``max_score_shift``; a shift that is both larger than the
  bound and significant at ``alpha`` aborts early (a constant-score model is caught after a few dozen
  requests), otherwise D is judged once ``min_requests`` are in.
* **latency** — p95 of the candidate's scoring time over the stable's, at most ``max_latency_ratio``;
  differences below ``latency_slack_ms`` never fail (a 0.2 ms vs 0.1 ms "2x" is noise on a shared
  machine). Judged only at ``min_requests``: latency is too noisy for an early verdict.

Promotion needs ``min_requests`` candidate requests and every check passing. The statistics are
implemented with numpy and :mod:`math` (no scipy: the serving image does not carry it); the tests
compare them with scipy's ``ks_2samp`` and ``binom``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["continue", "promote", "abort"]


class CanaryBounds(BaseModel):
    """How far a candidate may be from the stable version and still be promoted."""

    # Infinity/NaN (which Python's JSON parser accepts) would switch a check off: refused like any bad value.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    min_requests: int = Field(100, ge=1, le=1_000_000,
                              description="candidate requests needed before it can be promoted")
    max_error_increase: float = Field(0.02, ge=0.0, le=1.0,
                                      description="allowed error ratio above the stable's (absolute, 0.02 = 2 points)")
    max_latency_ratio: float = Field(2.0, ge=1.0, description="allowed p95 scoring latency, candidate / stable")
    latency_slack_ms: float = Field(5.0, ge=0.0, description="p95 differences below this never fail (noise)")
    max_score_shift: float = Field(0.2, gt=0.0, le=1.0,
                                   description="allowed two-sample KS statistic D between the score distributions")
    min_score_samples: int = Field(30, ge=5, description="scores needed on each side before they are compared")
    alpha: float = Field(0.001, gt=0.0, lt=0.5,
                         description="significance an early abort needs (before min_requests)")


class VersionSummary(BaseModel):
    """What one version did during the rollout (plain numbers, for the status and the log)."""

    version: int
    requests: int
    errors: int
    error_ratio: float
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    score_mean: float | None = None
    score_samples: int = 0


class Check(BaseModel):
    """One comparison: ``ok`` is None while it cannot be judged yet."""

    name: Literal["errors", "scores", "latency", "requests"]
    ok: bool | None
    value: float | None = None
    bound: float | None = None
    early: bool = False  # conclusive before min_requests (aborts at once)
    detail: str


class Verdict(BaseModel):
    """The analysis' answer, with the reasons for it (one sentence each)."""

    decision: Decision
    reasons: list[str]
    checks: list[Check]
    stable: VersionSummary
    candidate: VersionSummary


class VersionStats:
    """Counts and bounded samples of one version (not thread-safe: the caller serialises ``record``)."""

    def __init__(self, version: int, max_samples: int = 2000) -> None:
        self.version = int(version)
        self.requests = 0
        self.errors = 0
        self._latencies: deque[float] = deque(maxlen=max_samples)
        self._scores: deque[float] = deque(maxlen=max_samples)

    @classmethod
    def from_samples(cls, version: int, requests: int, errors: int, latencies_ms: Iterable[float] = (),
                     scores: Iterable[float] = (), max_samples: int = 2000) -> VersionStats:
        """Stats built from recorded numbers (a run record, a lab's table) instead of live traffic."""
        stats = cls(version, max_samples)
        stats.requests, stats.errors = int(requests), int(errors)
        stats._latencies.extend(float(x) for x in latencies_ms)
        stats._scores.extend(float(x) for x in scores)
        return stats

    def record(self, ok: bool, latency_ms: float, scores: Sequence[float] = ()) -> None:
        """One request: whether it succeeded, how long scoring took, the positive-class score of each row."""
        self.requests += 1
        if not ok:
            self.errors += 1
            return
        self._latencies.append(float(latency_ms))
        self._scores.extend(float(s) for s in scores)

    @property
    def error_ratio(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def scores(self) -> np.ndarray:
        return np.fromiter(self._scores, dtype=np.float64, count=len(self._scores))

    @property
    def latencies_ms(self) -> np.ndarray:
        return np.fromiter(self._latencies, dtype=np.float64, count=len(self._latencies))

    def latency_quantile(self, q: float = 0.95) -> float | None:
        return float(np.quantile(self.latencies_ms, q)) if self._latencies else None

    def summary(self) -> VersionSummary:
        scores = self.scores
        return VersionSummary(
            version=self.version, requests=self.requests, errors=self.errors, error_ratio=round(self.error_ratio, 6),
            latency_p50_ms=_round(self.latency_quantile(0.5)), latency_p95_ms=_round(self.latency_quantile(0.95)),
            score_mean=_round(float(scores.mean())) if scores.size else None, score_samples=int(scores.size))


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how surprising ``k`` failures in ``n`` are at a true ratio ``p``."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
            + (n - i) * math.log1p(-p) for i in range(k, n + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def ks_two_sample(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov: (D, asymptotic two-sided p-value), as ``scipy.stats.ks_2samp(method="asymp")``."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    n, m = a.size, b.size
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one value")
    grid = np.concatenate([a, b])
    d = float(np.max(np.abs(np.searchsorted(a, grid, side="right") / n - np.searchsorted(b, grid, side="right") / m)))
    en = math.sqrt(n * m / (n + m))
    return d, _kolmogorov_sf(d * en)


def _kolmogorov_sf(x: float) -> float:
    """P(K > x) of the Kolmogorov distribution (the limit of sqrt(n) D)."""
    if x <= 0.0:
        return 1.0
    if x < 0.2:  # the series converges slowly here; the probability is 1 to 1e-13
        return 1.0
    total = 0.0
    for j in range(1, 101):
        term = (-1) ** (j - 1) * math.exp(-2.0 * j * j * x * x)
        total += term
        if abs(term) < 1e-16:
            break
    return min(1.0, max(0.0, 2.0 * total))


def analyse(stable: VersionStats, candidate: VersionStats, bounds: CanaryBounds | None = None) -> Verdict:
    """Compare ``candidate`` with ``stable``: continue, promote or abort, and why."""
    bounds = bounds or CanaryBounds()
    checks = [_errors(stable, candidate, bounds), _scores(stable, candidate, bounds),
              _latency(stable, candidate, bounds)]
    n = candidate.requests
    enough = n >= bounds.min_requests
    checks.append(Check(name="requests", ok=enough, value=n, bound=bounds.min_requests,
                        detail=f"{n} of {bounds.min_requests} candidate requests"))
    early = [c for c in checks if c.ok is False and c.early]
    failed = [c for c in checks if c.ok is False and c.name != "requests"]
    if early or (enough and failed):
        decision: Decision = "abort"
        reasons = [c.detail for c in (early or failed)]
    elif not enough:
        decision, reasons = "continue", [f"waiting for evidence: {n} of {bounds.min_requests} candidate requests"]
    elif any(c.ok is None for c in checks):
        decision = "continue"
        reasons = [f"cannot judge {c.name} yet: {c.detail}" for c in checks if c.ok is None]
    else:
        decision = "promote"
        reasons = [f"{n} candidate requests, every check within bounds"] + [c.detail for c in checks[:3]]
    return Verdict(decision=decision, reasons=reasons, checks=checks, stable=stable.summary(),
                   candidate=candidate.summary())


def _errors(stable: VersionStats, candidate: VersionStats, bounds: CanaryBounds) -> Check:
    allowed = min(1.0, stable.error_ratio + bounds.max_error_increase)
    k, n = candidate.errors, candidate.requests
    ratio = candidate.error_ratio
    what = (f"error ratio {ratio:.3f} ({k}/{n}) vs allowed {allowed:.3f} "
            f"(stable {stable.error_ratio:.3f} + {bounds.max_error_increase:g})")
    if k and allowed < 1.0:
        p = binomial_tail(k, n, allowed)
        if p < bounds.alpha:
            return Check(name="errors", ok=False, value=ratio, bound=allowed, early=True,
                         detail=f"{what}: clearly worse (P = {p:.1e} < {bounds.alpha:g} at the bound), early abort")
    if n < bounds.min_requests:
        return Check(name="errors", ok=None if k else True, value=ratio, bound=allowed, detail=what)
    return Check(name="errors", ok=ratio <= allowed, value=ratio, bound=allowed,
                 detail=what + (": within bounds" if ratio <= allowed else ": above the bound"))


def _scores(stable: VersionStats, candidate: VersionStats, bounds: CanaryBounds) -> Check:
    a, b = stable.scores, candidate.scores
    need = bounds.min_score_samples
    if a.size < need or b.size < need:
        return Check(name="scores", ok=None, bound=bounds.max_score_shift,
                     detail=f"{b.size} candidate and {a.size} stable scores, {need} needed on each side")
    d, p = ks_two_sample(a, b)
    what = f"score shift KS D = {d:.3f} (p = {p:.1e}) vs allowed {bounds.max_score_shift:g}"
    if d > bounds.max_score_shift and p < bounds.alpha:
        return Check(name="scores", ok=False, value=d, bound=bounds.max_score_shift, early=True,
                     detail=f"{what}: the candidate scores differently, early abort")
    ok = d <= bounds.max_score_shift
    return Check(name="scores", ok=ok, value=d, bound=bounds.max_score_shift,
                 detail=what + (": within bounds" if ok else ": above the bound"))


def _latency(stable: VersionStats, candidate: VersionStats, bounds: CanaryBounds) -> Check:
    need = bounds.min_score_samples
    if len(stable._latencies) < need or len(candidate._latencies) < need:
        return Check(name="latency", ok=None, bound=bounds.max_latency_ratio,
                     detail=f"{len(candidate._latencies)} candidate and {len(stable._latencies)} stable "
                            f"latencies, {need} needed on each side")
    cand, stab = candidate.latency_quantile(0.95) or 0.0, stable.latency_quantile(0.95) or 0.0
    ratio = cand / stab if stab > 0 else (1.0 if cand <= 0 else math.inf)
    ok = ratio <= bounds.max_latency_ratio or cand - stab <= bounds.latency_slack_ms
    return Check(name="latency", ok=ok, value=round(ratio, 3), bound=bounds.max_latency_ratio,
                 detail=f"p95 {cand:.2f} ms vs stable {stab:.2f} ms (x{ratio:.2f}, allowed "
                        f"x{bounds.max_latency_ratio:g} or +{bounds.latency_slack_ms:g} ms)"
                        + (": within bounds" if ok else ": too slow"))
