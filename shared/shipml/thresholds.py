"""Choosing a decision threshold for a rare positive class (fraud), from what each mistake costs.

At a 1.8 % fraud rate a model that never says "fraud" is 98 % accurate, so accuracy says nothing; and 0.5
is only the right threshold when both mistakes cost the same. For a card issuer they don't: a **missed
fraud** costs the stolen amount plus the chargeback work, a **blocked card** (a false alarm) costs a call
to the customer, an annoyed customer and perhaps a lost sale. The threshold that minimises the expected
cost on held-out rows is the one to serve; the bundle records it (``metadata.decision_threshold``) and
every predictor's ``predict`` uses it (batch, API and edge).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and the curve it was chosen from (one entry per candidate threshold)."""

    threshold: float
    cost_missed_fraud: float
    cost_false_alarm: float
    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    false_alarms: np.ndarray
    missed: np.ndarray
    cost: np.ndarray

    def at(self, threshold: float) -> dict[str, float]:
        """Precision, recall, mistakes and cost at the candidate closest to ``threshold``."""
        i = int(np.abs(self.thresholds - threshold).argmin())
        return {"threshold": float(self.thresholds[i]), "precision": float(self.precision[i]),
                "recall": float(self.recall[i]), "false_alarms": int(self.false_alarms[i]),
                "missed_frauds": int(self.missed[i]), "cost": float(self.cost[i])}


def candidate_thresholds() -> np.ndarray:
    """Fine near zero (a rare class's useful thresholds are small), coarser above 5 %."""
    return np.unique(np.concatenate([np.geomspace(1e-4, 0.05, 80), np.linspace(0.05, 0.995, 190)]))


def choose_threshold(y_true: np.ndarray, fraud_proba: np.ndarray, *, cost_missed_fraud: float,
                     cost_false_alarm: float) -> ThresholdChoice:
    """The threshold in (0, 1) with the lowest total cost ``missed * cost_missed + false_alarms * cost_alarm``
    on labelled held-out rows (never the training rows: their probabilities are optimistic)."""
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(fraud_proba, dtype=float)
    if y.shape != p.shape or y.ndim != 1 or not y.any() or y.all():
        raise ValueError("need one probability per label, and both classes among the labels")
    thresholds = candidate_thresholds()
    flagged = p[None, :] >= thresholds[:, None]  # candidates x rows
    tp = (flagged & y).sum(axis=1)
    fp = (flagged & ~y).sum(axis=1)
    fn = y.sum() - tp
    precision = np.divide(tp, tp + fp, out=np.ones(len(thresholds)), where=(tp + fp) > 0)
    recall = tp / y.sum()
    cost = fn * cost_missed_fraud + fp * cost_false_alarm
    best = int(cost.argmin())
    return ThresholdChoice(float(thresholds[best]), cost_missed_fraud, cost_false_alarm, thresholds, precision,
                           recall, fp, fn, cost.astype(float))


def plot_choice(choice: ThresholdChoice, ax=None):
    """Precision, recall and cost against the threshold, with 0.5 and the chosen threshold marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.4))
    ax.plot(choice.thresholds, choice.precision, label="precision (flagged that are fraud)")
    ax.plot(choice.thresholds, choice.recall, label="recall (frauds caught)")
    ax.set_xlabel("decision threshold on the fraud probability (log scale)")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    cost_ax = ax.twinx()
    cost_ax.plot(choice.thresholds, choice.cost / 1000, color="C3", label="total cost (k€, right axis)")
    cost_ax.set_ylabel("cost on held-out rows (k€)")
    for t, style, text in [(0.5, ":", "0.5"), (choice.threshold, "--", f"chosen {choice.threshold:.3f}")]:
        ax.axvline(t, color="k", ls=style, lw=1)
        ax.annotate(text, (t, 0.05), xytext=(3, 0), textcoords="offset points", fontsize=8)
    ax.set_xlim(choice.thresholds[0], 1)
    lines = ax.get_lines()[:2] + cost_ax.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="center right", fontsize=8)
    ax.set_title(f"a missed fraud costs €{choice.cost_missed_fraud:,.0f}, "
                 f"a blocked card €{choice.cost_false_alarm:,.0f}")
    return ax
