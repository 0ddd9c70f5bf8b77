"""The canary analysis on its own: its statistics agree with scipy, and each check decides what it should."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats as sps
from shipml.release.analysis import CanaryBounds, VersionStats, analyse, binomial_tail, ks_two_sample

RNG = np.random.default_rng(0)


def healthy(version: int, n: int, seed: int, errors: int = 0, shift: float = 0.0) -> VersionStats:
    rng = np.random.default_rng(seed)
    return VersionStats.from_samples(version, n, errors, latencies_ms=rng.gamma(4.0, 0.5, n - errors),
                                     scores=np.clip(rng.beta(1.2, 40.0, n - errors) + shift, 0, 1))


@pytest.mark.parametrize(("k", "n", "p"), [(1, 10, 0.02), (3, 17, 0.02), (5, 40, 0.03), (0, 5, 0.1), (9, 9, 0.5)])
def test_binomial_tail_matches_scipy(k, n, p):
    assert binomial_tail(k, n, p) == pytest.approx(sps.binom.sf(k - 1, n, p), rel=1e-9, abs=1e-15)


def test_ks_statistic_matches_scipy_and_p_value_is_close():
    a, b = RNG.beta(1.2, 40.0, 400), RNG.beta(1.2, 30.0, 120)
    d, p = ks_two_sample(a, b)
    ref = sps.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=0.35)  # the limiting distribution: slightly conservative
    same_d, same_p = ks_two_sample(a, a)
    assert same_d == 0.0 and same_p == 1.0


def test_a_similar_candidate_waits_then_is_promoted():
    bounds = CanaryBounds(min_requests=100)
    stable = healthy(1, 600, seed=1)
    early = analyse(stable, healthy(2, 50, seed=2), bounds)
    assert early.decision == "continue" and "50 of 100" in early.reasons[0]
    verdict = analyse(stable, healthy(2, 150, seed=3), bounds)
    assert verdict.decision == "promote", verdict.reasons
    assert all(c.ok for c in verdict.checks)


def test_a_constant_scorer_is_aborted_early_on_its_scores():
    stable = healthy(1, 600, seed=1)
    constant = VersionStats.from_samples(2, 30, 0, latencies_ms=[1.0] * 30, scores=[0.018] * 30)
    verdict = analyse(stable, constant, CanaryBounds(min_requests=100))
    assert verdict.decision == "abort"
    scores = next(c for c in verdict.checks if c.name == "scores")
    assert scores.ok is False and scores.early and scores.value > 0.5
    assert "KS D" in verdict.reasons[0]


def test_errors_abort_without_waiting_but_one_unlucky_failure_does_not():
    bounds = CanaryBounds(min_requests=100)
    stable = healthy(1, 600, seed=1)
    assert analyse(stable, healthy(2, 20, seed=2, errors=1), bounds).decision == "continue"
    failing = healthy(2, 12, seed=2, errors=4)  # 4 of 12: P < 1e-4 if the true ratio were 2 %
    verdict = analyse(stable, failing, bounds)
    assert verdict.decision == "abort" and "early abort" in verdict.reasons[0]
    broken = VersionStats.from_samples(2, 2, 2)  # fails on everything: two failures are enough
    assert analyse(stable, broken, CanaryBounds(min_requests=100, alpha=0.001)).decision == "abort"


def test_at_min_requests_a_ratio_over_the_bound_aborts():
    stable = healthy(1, 600, seed=1)
    verdict = analyse(stable, healthy(2, 100, seed=3, errors=4), CanaryBounds(min_requests=100))
    assert verdict.decision == "abort" and "above the bound" in verdict.reasons[0]


def test_latency_needs_both_ratio_and_slack():
    stable = VersionStats.from_samples(1, 200, 0, latencies_ms=[1.0] * 200, scores=RNG.beta(1.2, 40, 200))
    slow = VersionStats.from_samples(2, 100, 0, latencies_ms=[30.0] * 100, scores=RNG.beta(1.2, 40, 100))
    verdict = analyse(stable, slow, CanaryBounds(min_requests=100, latency_slack_ms=5.0))
    assert verdict.decision == "abort" and "too slow" in " ".join(verdict.reasons)
    tolerant = analyse(stable, slow, CanaryBounds(min_requests=100, latency_slack_ms=50.0))
    assert next(c for c in tolerant.checks if c.name == "latency").ok


def test_stats_are_bounded_and_bounds_reject_nonsense():
    s = VersionStats(1, max_samples=50)
    for i in range(500):
        s.record(i % 10 != 0, 1.0, [0.1, 0.2])
    assert s.requests == 500 and s.errors == 50 and s.scores.size == 50 and s.latencies_ms.size == 50
    assert s.summary().error_ratio == 0.1
    with pytest.raises(ValidationError):
        CanaryBounds(max_latency_ratio=0.5)
    with pytest.raises(ValidationError):
        CanaryBounds(min_requests=10, surprise=1)
