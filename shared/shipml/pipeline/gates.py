"""Quality gates: the candidate against fixed bounds and against the version now deployed, on the same
held-out rows. Pure functions (metrics in, verdicts out), so a lab can write its own gate and a test can
feed any numbers.

Three questions, because one number hides failures: ranking (ROC AUC, not worse than the deployed by
more than a margin), calibration (a probability of 0.2 should mean 20 % fraud: Brier score and expected
calibration error), and a slice (card-not-present payments, where most fraud is: a model can improve
overall while getting worse exactly there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

from shipml.monitoring.performance import calibration_error
from shipml.pipeline.config import Gates


@dataclass(frozen=True)
class Gate:
    """One verdict: ``value`` against ``bound`` (``bound`` is the worst value allowed)."""

    name: str
    passed: bool
    value: float | None
    bound: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def holdout_metrics(y: np.ndarray, proba: np.ndarray, in_slice: np.ndarray) -> dict[str, float]:
    """ROC AUC, Brier score, calibration error overall, and ROC AUC on the slice rows (NaN when the
    slice lacks a class)."""
    y, proba, in_slice = np.asarray(y, int), np.asarray(proba, float), np.asarray(in_slice, bool)
    sliced = y[in_slice]
    slice_auc = float(roc_auc_score(sliced, proba[in_slice])) if len(set(sliced.tolist())) == 2 else float("nan")
    return {"roc_auc": float(roc_auc_score(y, proba)), "brier": float(brier_score_loss(y, proba)),
            "ece": calibration_error(y, proba), "slice_roc_auc": slice_auc, "rows": float(len(y)),
            "slice_rows": float(in_slice.sum()), "slice_frauds": float(sliced.sum())}


def check_gates(candidate: dict[str, float], deployed: dict[str, float] | None, gates: Gates) -> list[Gate]:
    """Every gate's verdict for ``candidate`` metrics (deployed None: nothing to compare with, floors only)."""
    found = [_not_worse("roc_auc", candidate["roc_auc"], deployed and deployed.get("roc_auc"),
                        gates.auc_margin, gates.min_auc)]
    found.append(_at_most("brier", candidate["brier"], gates.max_brier))
    found.append(_at_most("ece", candidate["ece"], gates.max_ece))
    slice_name = f"slice {gates.slice_column}={gates.slice_value}"
    if candidate["slice_rows"] < gates.min_slice_rows or np.isnan(candidate["slice_roc_auc"]):
        found.append(Gate(slice_name, False, None, None,
                          f"{slice_name}: {int(candidate['slice_rows'])} held-out rows, "
                          f"{int(candidate['slice_frauds'])} fraud: too few to judge (need {gates.min_slice_rows} "
                          "rows with both classes); raise holdout_rows"))
    else:
        found.append(_not_worse(slice_name, candidate["slice_roc_auc"], deployed and deployed.get("slice_roc_auc"),
                                gates.slice_auc_margin, gates.min_slice_auc, metric="ROC AUC"))
    return found


def failed(verdicts: list[Gate]) -> list[Gate]:
    return [g for g in verdicts if not g.passed]


def _not_worse(name: str, value: float, deployed: float | None, margin: float, floor: float,
               metric: str = "") -> Gate:
    label = f"{name}{' ' + metric if metric else ''}"
    bound = floor if deployed is None or np.isnan(deployed) else max(floor, deployed - margin)
    if value >= bound:
        return Gate(name, True, value, bound, f"{label} {value:.4f} >= {bound:.4f}")
    if deployed is not None and value < deployed - margin:
        why = f"{deployed - value:.4f} below the deployed version's {deployed:.4f} (margin {margin})"
    else:
        why = f"below the floor {floor}"
    return Gate(name, False, value, bound, f"{label} {value:.4f} is {why}")


def _at_most(name: str, value: float, bound: float) -> Gate:
    if value <= bound:
        return Gate(name, True, value, bound, f"{name} {value:.4f} <= {bound}")
    return Gate(name, False, value, bound, f"{name} {value:.4f} is above the bound {bound} (poorly calibrated)")
