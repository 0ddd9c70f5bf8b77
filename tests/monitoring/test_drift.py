"""Drift: PSI by hand, the false-alarm rate on undrifted data, and which features drift=1 moves."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import scored
from shipml.data import make_transactions
from shipml.errors import ShipmlError
from shipml.monitoring.drift import detect_drift, psi, psi_band

# What shipml.data's drift option shifts (see its docstring): amount (prices +50 %), hour (peak 2 h later),
# merchant mix (online retail doubles) and so card_present (online is card-not-present); the score moves with
# them. Distance, the 24 h count and account age are drawn exactly as before.
DRIFTED = {"amount", "hour", "merchant_category", "card_present", "score"}
UNDRIFTED = {"distance_from_home_km", "txn_count_24h", "account_age_days"}


def test_psi_matches_the_formula_and_bands():
    ref, cur = np.array([50, 30, 20]), np.array([30, 30, 40])
    p, q = ref / 100, cur / 100
    assert psi(ref, cur) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert psi(ref, ref) == 0.0
    assert psi([10, 0], [5, 5]) < 10  # an empty bin is floored, not infinite
    assert [psi_band(v) for v in (0.05, 0.1, 0.2, 0.25, 1.0)] == ["stable", "moderate", "moderate", "major", "major"]
    with pytest.raises(ShipmlError):
        psi([1, 2], [1, 2, 3])


def test_false_alarms_at_most_5_percent_of_windows_over_50_seeds(reference, lr_predictor):
    flagged = []
    for seed in range(50):
        window = scored(lr_predictor, make_transactions(5000, seed=10_000 + seed))
        flagged.append(detect_drift(reference, window).flagged)
    rate = float(np.mean(flagged))
    assert rate <= 0.05, f"{rate:.0%} of undrifted windows flagged"


def test_drift_1_flags_every_drifted_feature_and_no_other(reference, lr_predictor):
    window = scored(lr_predictor, make_transactions(5000, seed=321, drift=1.0))
    result = detect_drift(reference, window)
    assert set(result.drifted) == DRIFTED, result.to_frame()
    assert not set(result.drifted) & UNDRIFTED
    assert result.get("amount").band in ("moderate", "major")


def test_the_score_is_checked_only_when_the_log_has_it(reference):
    window = make_transactions(1000, seed=5)
    result = detect_drift(reference, window)
    assert "score" not in {f.feature for f in result.features}


def test_clear_errors_for_a_small_window_or_missing_columns(reference):
    with pytest.raises(ShipmlError, match="drift needs at least 100"):
        detect_drift(reference, make_transactions(50, seed=1))
    with pytest.raises(ShipmlError, match="lacks the feature column"):
        detect_drift(reference, make_transactions(500, seed=1).drop(columns=["hour"]))


def test_unseen_categories_count_as_other(reference):
    window = make_transactions(2000, seed=3)
    window["merchant_category"] = window["merchant_category"].astype(str).where(
        np.arange(2000) % 4 != 0, "crypto")
    f = detect_drift(reference, window).get("merchant_category")
    assert f.drifted and f.band == "major"
