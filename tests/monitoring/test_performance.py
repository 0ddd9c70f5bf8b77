"""Delayed labels joined to the log: metrics per window, the drop found, unknown ids counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import scored
from shipml.data import make_transactions
from shipml.errors import ShipmlError
from shipml.monitoring.performance import (
    calibration_error,
    find_drop,
    join_labels,
    performance_by_window,
    read_labels,
)


def _log(predictor, drift_after: int, rows: int = 12_000):
    parts = [make_transactions(drift_after, seed=50)]
    if rows > drift_after:
        parts.append(make_transactions(rows - drift_after, seed=51, drift=1.0, start_id=drift_after))
    frame = scored(predictor, pd.concat(parts, ignore_index=True))
    frame["time"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(rows), unit="s")
    frame["id"] = "tx-" + frame["id"].astype(str)
    return frame


def test_the_window_where_performance_dropped_is_found(lr_predictor, reference):
    log = _log(lr_predictor, drift_after=8000)
    labels = pd.DataFrame({"id": log["id"], "label": log["is_fraud"]})
    join = join_labels(log.drop(columns=["is_fraud"]), labels)
    assert join.matched == 12_000 and join.unknown_ids == 0 and join.unlabeled == 0
    table = performance_by_window(join.joined, 4000, min_labels=200)
    assert list(table["status"]) == ["ok"] * 3
    assert find_drop(table, reference.metrics) == 2  # the drifted window, not before
    # prior drift: fraud odds x2 and more; the model still ranks (ROC AUC) but its probabilities are now too low
    assert table["fraud_rate"].iloc[2] > 2 * table["fraud_rate"].iloc[0]
    assert table["calibration_error"].iloc[2] > reference.metrics["calibration_error"] + 0.02
    assert table["mean_score"].iloc[2] < table["fraud_rate"].iloc[2] / 2
    assert find_drop(table, {"roc_auc": 0.99}) == 0  # the ROC AUC rule alone


def test_unknown_and_duplicate_ids_are_counted_and_sparse_windows_say_so(lr_predictor, tmp_path):
    log = _log(lr_predictor, drift_after=3000, rows=3000)
    labels = pd.DataFrame({"id": list(log["id"][:500]) + ["nope-1", "nope-2", "tx-0"],
                           "label": list(log["is_fraud"][:500]) + [0, 1, 1]})
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    join = join_labels(log, read_labels(path))
    assert (join.labels, join.matched, join.unknown_ids, join.duplicate_ids) == (503, 500, 2, 1)
    assert join.unlabeled == 2500 and "2 for ids the log does not hold" in join.summary()
    table = performance_by_window(join.joined, 1000, min_labels=200)
    assert table["status"].iloc[0] in ("ok", "one class only: no ROC AUC")
    assert table["status"].iloc[1] == "too few labels (0 < 200)"


def test_labels_file_mistakes_are_one_clear_line(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": [1], "y": [0]}).to_csv(bad, index=False)
    with pytest.raises(ShipmlError, match="needs the column"):
        read_labels(bad)
    pd.DataFrame({"id": [1, 2], "label": [0, "yes"]}).to_csv(bad, index=False)
    with pytest.raises(ShipmlError, match="not 0 or 1"):
        read_labels(bad)


def test_calibration_error_is_zero_for_calibrated_scores():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(200_000) < p).astype(int)
    assert calibration_error(y, p) < 0.01
    assert calibration_error(y, np.clip(p * 0.5, 0, 1)) > 0.2
