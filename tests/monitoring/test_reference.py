"""The reference profile: written into every new bundle, hashed, and older bundles still load."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from shipml.bundle import SUMS_FILE, verify_bundle
from shipml.errors import BundleError, ShipmlError
from shipml.monitoring.reference import REFERENCE_FILE, SCORE, load_reference, numeric_profile
from shipml.predictor import load_predictor


def test_every_new_bundle_has_a_hashed_reference(lr_bundle, reference):
    assert (lr_bundle / REFERENCE_FILE).is_file()
    assert REFERENCE_FILE in (lr_bundle / SUMS_FILE).read_text()
    assert reference.model == "fraud-lr" and reference.version == 1
    assert reference.rows == 8000  # the held-out fifth of 40,000 rows
    assert set(reference.features) == {"amount", "hour", "merchant_category", "distance_from_home_km",
                                       "card_present", "txn_count_24h", "account_age_days"}
    assert reference.features["merchant_category"].categories[-1] == "(other)"
    assert reference.features["card_present"].categories == ["False", "True", "(other)"]
    assert 0.8 < reference.metrics["roc_auc"] < 0.95
    for profile in reference.profiles().values():
        assert profile.n == 8000
    assert len(reference.score.sample) == 2000
    assert (lr_bundle / REFERENCE_FILE).stat().st_size < 200_000  # small


def test_a_tampered_reference_is_refused(lr_bundle, tmp_path):
    bundle = shutil.copytree(lr_bundle, tmp_path / "b")
    data = json.loads((bundle / REFERENCE_FILE).read_text())
    data["features"]["amount"]["counts"][0] += 1
    (bundle / REFERENCE_FILE).write_text(json.dumps(data))
    with pytest.raises(BundleError, match="reference.json does not match"):
        load_reference(bundle)


def test_an_older_bundle_without_reference_loads_and_says_so(lr_bundle, tmp_path):
    bundle = shutil.copytree(lr_bundle, tmp_path / "old")
    (bundle / REFERENCE_FILE).unlink()
    sums = [line for line in (bundle / SUMS_FILE).read_text().splitlines() if REFERENCE_FILE not in line]
    (bundle / SUMS_FILE).write_text("\n".join(sums) + "\n")
    verify_bundle(bundle)
    assert load_predictor(bundle).predict_proba({"amount": [10.0], "hour": [3], "merchant_category": ["fuel"],
                                                 "distance_from_home_km": [1.0], "card_present": [True],
                                                 "txn_count_24h": [1], "account_age_days": [100]}).shape == (1, 2)
    with pytest.raises(ShipmlError, match="no reference in this bundle"):
        load_reference(bundle)


def test_bins_keep_every_value_and_merge_repeated_integer_edges():
    x = np.random.default_rng(0).poisson(3.0, 10_000)
    profile = numeric_profile("txn", x)
    assert list(profile.edges) == sorted(set(profile.edges))
    assert profile.n == 10_000
    assert min(profile.counts) > 0  # no empty bin at the minimum
    assert profile.bin_counts([-5, 1e9]).sum() == 2  # out of range: the outer bins
    assert SCORE == "score"
