"""Delayed labels: what the model's answers were worth, once the truth arrives.

Fraud labels come days or weeks after the prediction (a chargeback, an investigation). A labels file
holds ``id``, ``label`` and optionally ``label_time``; :func:`join_labels` matches it to the prediction log
by ``id`` and says what did not match — labels for ids the log never saw are **counted and reported**,
never silently dropped (a wrong id format, or another model's log). :func:`performance_by_window` then
gives ROC AUC, average precision, precision and recall at the serving threshold and the calibration
error per window; a window with fewer than ``min_labels`` labels (or only one class) says so instead of
a number. :func:`find_drop` names the first window whose ROC AUC fell, or whose calibration error rose,
beyond the reference's held-out figures. Both matter: under prior drift (fraud doubles) a model can keep
ranking as well as before (same ROC AUC) while its probabilities become wrong (calibration error up).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shipml.errors import ShipmlError

DEFAULT_MIN_LABELS = 200


@dataclass
class LabelJoin:
    """The log rows with their labels, and what did not match."""

    joined: pd.DataFrame  # every log row, with ``label`` (NaN where no label arrived yet)
    labels: int  # rows in the labels file
    matched: int
    unknown_ids: int  # labels whose id is not in the log
    duplicate_ids: int  # labels given more than once for an id (the last one is used)
    unlabeled: int  # log rows without a label (yet)

    def summary(self) -> str:
        return (f"{self.labels:,} labels: {self.matched:,} matched the log, {self.unknown_ids:,} for ids the log "
                f"does not hold, {self.duplicate_ids:,} duplicates; {self.unlabeled:,} logged predictions "
                "have no label yet")


def read_labels(path: str | Path, label_column: str = "label") -> pd.DataFrame:
    """A labels file (CSV or Parquet): ``id``, ``label`` (0/1; or ``label_column``), optionally ``label_time``."""
    from shipml.data import read_table

    df = read_table(path)
    if label_column != "label" and label_column in df.columns:
        df = df.drop(columns=["label"], errors="ignore").rename(columns={label_column: "label"})
    missing = [c for c in ("id", "label") if c not in df.columns]
    if missing:
        raise ShipmlError(f"{path}: a labels file needs the column(s) {', '.join(missing)} (and optionally "
                          f"label_time); it has {', '.join(map(str, df.columns))}")
    bad = ~pd.to_numeric(df["label"], errors="coerce").isin([0, 1])
    if bad.any():
        first = df.loc[bad, "label"].iloc[0]
        raise ShipmlError(f"{path}: {int(bad.sum())} label(s) are not 0 or 1 (first: {first!r})")
    df = df.assign(id=df["id"].astype(str), label=pd.to_numeric(df["label"]).astype(np.int64))
    return df


def join_labels(log: pd.DataFrame, labels: pd.DataFrame) -> LabelJoin:
    """Match ``labels`` to ``log`` rows by ``id`` (as text)."""
    ids = log["id"].astype(str)
    if ids.duplicated().any():
        raise ShipmlError(f"the log holds {int(ids.duplicated().sum())} repeated id(s); ids must be unique to join "
                          "labels (send a unique X-Request-Id per prediction)")
    labels = labels.assign(id=labels["id"].astype(str))
    dup = int(labels["id"].duplicated().sum())
    last = labels.drop_duplicates("id", keep="last")
    known = last["id"].isin(set(ids))
    columns = ["id", "label"] + (["label_time"] if "label_time" in last.columns else [])
    joined = log.assign(id=ids).merge(last.loc[known, columns], on="id", how="left")
    return LabelJoin(joined, len(labels), int(known.sum()), int((~known).sum()), dup, len(log) - int(known.sum()))


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted gap between mean score and fraud rate, over score deciles."""
    if len(y) == 0:
        return float("nan")
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1]))
    idx = np.searchsorted(edges, p, side="right")
    total = 0.0
    for b in np.unique(idx):
        m = idx == b
        total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / len(y))


def window_metrics(y: np.ndarray, p: np.ndarray, threshold: float, min_labels: int) -> dict[str, Any]:
    """The metrics of one window, or a ``status`` saying why there are none."""
    from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

    out: dict[str, Any] = {"labels": len(y), "fraud_rate": float(y.mean()) if len(y) else float("nan"),
                           "mean_score": float(p.mean()) if len(p) else float("nan")}
    nan = {"roc_auc": float("nan"), "average_precision": float("nan"), "precision": float("nan"),
           "recall": float("nan"), "calibration_error": float("nan")}
    if len(y) < min_labels:
        return {**out, **nan, "status": f"too few labels ({len(y)} < {min_labels})"}
    if len(np.unique(y)) < 2:
        return {**out, **nan, "status": "one class only: no ROC AUC"}
    pred = (p >= threshold).astype(int)
    return {**out, "roc_auc": float(roc_auc_score(y, p)), "average_precision": float(average_precision_score(y, p)),
            "precision": float(precision_score(y, pred, zero_division=0)),
            "recall": float(recall_score(y, pred, zero_division=0)),
            "calibration_error": calibration_error(y, p), "status": "ok"}


def performance_by_window(joined: pd.DataFrame, window: Any, *, threshold: float = 0.5,
                          min_labels: int = DEFAULT_MIN_LABELS) -> pd.DataFrame:
    """One row per window of the *log* (the same windows as drift), from its labelled rows: metrics, status."""
    from shipml.monitoring.windows import split_windows

    if joined["label"].notna().sum() == 0:
        raise ShipmlError("no labelled predictions to measure (no label matched the log)")
    rows = []
    for w in split_windows(joined, window):
        labelled = w.frame[w.frame["label"].notna()]
        y = labelled["label"].to_numpy(dtype=np.int64)
        p = labelled["score"].to_numpy(dtype=np.float64)
        rows.append({"window": w.index, "start": w.start, "end": w.end, "rows": len(w.frame),
                     **window_metrics(y, p, threshold, min_labels)})
    return pd.DataFrame(rows)


def dropped(table: pd.DataFrame, baseline: dict[str, float], *, auc_tolerance: float = 0.05,
            calibration_tolerance: float = 0.02) -> pd.Series:
    """Per window: True when its ROC AUC fell more than ``auc_tolerance`` below the baseline's, or its calibration
    error rose more than ``calibration_tolerance`` above it (the model still ranks, but its probabilities lie)."""
    ok = table["status"] == "ok"
    low_auc = table["roc_auc"] < baseline.get("roc_auc", float("-inf")) - auc_tolerance
    bad_cal = table["calibration_error"] > baseline.get("calibration_error", float("inf")) + calibration_tolerance
    return ok & (low_auc | bad_cal)


def find_drop(table: pd.DataFrame, baseline: dict[str, float], **tolerances: float) -> int | None:
    """The first window where performance dropped (see :func:`dropped`), or None."""
    hits = table.loc[dropped(table, baseline, **tolerances), "window"]
    return None if hits.empty else int(hits.iloc[0])
