"""The gates are pure: metrics in, verdicts out; every failure says why in one line."""

from __future__ import annotations

import numpy as np
from shipml.pipeline.config import Gates
from shipml.pipeline.gates import check_gates, failed, holdout_metrics

GOOD = {"roc_auc": 0.87, "brier": 0.016, "ece": 0.003, "slice_roc_auc": 0.77, "rows": 20000.0,
        "slice_rows": 4752.0, "slice_frauds": 259.0}


def test_a_good_candidate_passes_against_nothing_and_against_itself():
    assert failed(check_gates(GOOD, None, Gates())) == []
    assert failed(check_gates(GOOD, GOOD, Gates())) == []


def test_worse_auc_than_deployed_beyond_the_margin_fails_with_the_numbers():
    worse = {**GOOD, "roc_auc": 0.84}
    (gate,) = failed(check_gates(worse, GOOD, Gates(auc_margin=0.01)))
    assert gate.name == "roc_auc" and gate.bound == 0.86
    assert gate.message == "roc_auc 0.8400 is 0.0300 below the deployed version's 0.8700 (margin 0.01)"
    assert failed(check_gates(worse, GOOD, Gates(auc_margin=0.05))) == []  # within a wider margin


def test_floors_hold_when_nothing_is_deployed():
    (gate,) = failed(check_gates({**GOOD, "roc_auc": 0.55}, None, Gates()))
    assert "below the floor 0.7" in gate.message


def test_calibration_and_slice_are_judged_on_their_own():
    bad = {**GOOD, "ece": 0.05, "slice_roc_auc": 0.70}
    names = [g.name for g in failed(check_gates(bad, GOOD, Gates()))]
    assert names == ["ece", "slice card_present=False"]  # overall AUC fine, the slice got worse


def test_a_slice_too_small_to_judge_fails_instead_of_passing():
    (gate,) = failed(check_gates({**GOOD, "slice_rows": 50.0}, None, Gates()))
    assert "too few to judge" in gate.message and "raise holdout_rows" in gate.message


def test_holdout_metrics_agree_with_definitions():
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    y = (rng.random(2000) < p).astype(int)  # calibrated by construction
    in_slice = np.arange(2000) % 4 == 0
    m = holdout_metrics(y, p, in_slice)
    assert abs(m["brier"] - np.mean((p - y) ** 2)) < 1e-12
    assert m["ece"] < 0.05 and 0.6 < m["roc_auc"] < 0.9 and m["slice_rows"] == 500
    assert np.isnan(holdout_metrics(np.zeros(10, int), p[:10], np.ones(10, bool))["slice_roc_auc"])
