"""Drift of each feature and of the score against the bundle's reference profile.

Two numbers per feature, because they answer different questions:

* **PSI** (population stability index), *how much* the distribution moved:
  ``sum((cur - ref) * ln(cur / ref))`` over the reference bins (deciles for numbers, categories for
  categories), with proportions floored at ``1e-4`` so an empty bin does not make it infinite. Bands, the
  industry's rule of thumb: below 0.1 stable, 0.1-0.25 moderate, above 0.25 major.
* a **test**, *whether* it moved more than chance would: two-sample Kolmogorov-Smirnov (the reference
  sample vs the window) for numbers, chi-square on the reference vs window counts for categories (scipy).

A feature is flagged as **drifted** when its test is significant at ``alpha`` divided by the number of
tests in the window (Bonferroni: ``alpha`` is the chance that an undrifted window flags anything at all)
*and* its PSI is at least ``min_psi`` (in a window of a million rows a test finds shifts too small to
matter). A window flags when any feature (or the score) drifts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from shipml.errors import ShipmlError
from shipml.monitoring.reference import SCORE, FeatureProfile, ReferenceProfile

PSI_FLOOR = 1e-4
PSI_BANDS = (0.1, 0.25)
DEFAULT_ALPHA = 0.01
DEFAULT_MIN_PSI = 0.02
DEFAULT_MIN_ROWS = 100


def psi(reference_counts: Any, current_counts: Any, floor: float = PSI_FLOOR) -> float:
    """Population stability index of two count vectors over the same bins."""
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if ref.shape != cur.shape or ref.sum() <= 0 or cur.sum() <= 0:
        raise ShipmlError("psi needs two non-empty count vectors over the same bins")
    p = np.maximum(ref / ref.sum(), floor)
    q = np.maximum(cur / cur.sum(), floor)
    return float(np.sum((q - p) * np.log(q / p)))


def psi_band(value: float) -> str:
    """``stable`` (< 0.1), ``moderate`` (0.1-0.25) or ``major`` (>= 0.25)."""
    return "stable" if value < PSI_BANDS[0] else "moderate" if value < PSI_BANDS[1] else "major"


@dataclass
class FeatureDrift:
    """One feature's (or the score's) drift in one window."""

    feature: str
    kind: str
    rows: int
    psi: float
    band: str
    test: str
    statistic: float
    p_value: float
    drifted: bool


@dataclass
class DriftResult:
    """Every feature's drift in one window, and whether the window flags."""

    features: list[FeatureDrift]
    alpha: float
    min_psi: float
    rows: int

    @property
    def drifted(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def flagged(self) -> bool:
        return bool(self.drifted)

    def get(self, feature: str) -> FeatureDrift:
        for f in self.features:
            if f.feature == feature:
                return f
        raise KeyError(feature)

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([asdict(f) for f in self.features])


def run_test(profile: FeatureProfile, values: Any) -> tuple[str, float, float, np.ndarray]:
    """(test name, statistic, p-value, the window's bin counts) for one feature."""
    counts = profile.bin_counts(values)
    if profile.kind == "numeric":
        x = np.asarray(values, dtype=np.float64)
        x = x[~np.isnan(x)]
        res = stats.ks_2samp(np.asarray(profile.sample), x)
        return "ks", float(res.statistic), float(res.pvalue), counts
    table = np.vstack([np.asarray(profile.counts), counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return "chi2", 0.0, 1.0, counts
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    return "chi2", float(chi2), float(p), counts


def feature_columns(reference: ReferenceProfile, data: Any) -> dict[str, Any]:
    """The columns of ``data`` drift looks at: every profiled feature, and ``score`` when present."""
    names = list(reference.features)
    missing = [n for n in names if n not in data]
    if missing:
        raise ShipmlError(f"the data lacks the feature column(s) {', '.join(missing)}; is this the log of this model?")
    columns = {n: data[n] for n in names}
    if SCORE in data:
        columns[SCORE] = np.asarray(data[SCORE], dtype=np.float64)
    return columns


def _is_categorical(values: Any) -> bool:
    import pandas as pd

    return isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype)


def detect_drift(reference: ReferenceProfile, data: Any, *, alpha: float = DEFAULT_ALPHA,
                 min_psi: float = DEFAULT_MIN_PSI, min_rows: int = DEFAULT_MIN_ROWS) -> DriftResult:
    """Drift of every feature (and of ``score`` if ``data`` has it) in one window ``data``."""
    columns = feature_columns(reference, data)
    rows = len(next(iter(columns.values()))) if columns else 0
    columns = {n: (v if _is_categorical(v) else np.asarray(v)) for n, v in columns.items()}
    if rows < min_rows:
        raise ShipmlError(f"the window holds {rows} rows; drift needs at least {min_rows} (choose a larger window)")
    profiles = reference.profiles()
    cutoff = alpha / len(columns)
    results = []
    for name, values in columns.items():
        profile = profiles[name]
        test, statistic, p_value, counts = run_test(profile, values)
        value = psi(profile.counts, counts)
        results.append(FeatureDrift(name, profile.kind, int(counts.sum()), round(value, 6), psi_band(value), test,
                                    statistic, p_value, bool(p_value < cutoff and value >= min_psi)))
    return DriftResult(results, alpha, min_psi, rows)


def drift_over_windows(reference: ReferenceProfile, windows: Iterable[Any], **options: Any) -> Any:
    """One row per window and feature (window, start, end, rows, feature, psi, p_value, drifted): drift over time."""
    import pandas as pd

    rows = []
    for w in windows:
        result = detect_drift(reference, w.frame, **options)
        for f in result.features:
            rows.append({"window": w.index, "start": w.start, "end": w.end, "rows": result.rows, **asdict(f),
                         "window_flagged": result.flagged})
    if not rows:
        raise ShipmlError("no window to compute drift on (the log is empty?)")
    return pd.DataFrame(rows)
