"""The kit's drift figures against an independent implementation.

Evidently cannot be the cross-check with the kit's pins: ``evidently==0.7.23`` (the newest) *installs* next
to numpy 2.4.6, pandas 3.1.1 and scikit-learn 1.8.0 (pip resolves it), but ``import evidently`` fails under
pandas 3 (``ImportError: cannot import name 'infer_dtype_from_object' from 'pandas.core.dtypes.common'``,
a private pandas API that pandas 3 removed) — checked in a throw-away venv on 2026-12-01. So the second
implementation is written here from scratch with numpy: its own binning, its own ECDF-based KS statistic
with the asymptotic Kolmogorov p-value, its own Pearson chi-square; a mistake in the kit's bins or in its
use of scipy shows up as a mismatch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from shipml.data import SCHEMA, make_transactions
from shipml.monitoring.drift import detect_drift
from shipml.monitoring.reference import build_reference

NUMERIC = [f.name for f in SCHEMA.features if f.dtype in ("float", "int")]
CATEGORICAL = [f.name for f in SCHEMA.features if f.dtype in ("category", "bool")]


@pytest.fixture(scope="module")
def ref_rows():
    return make_transactions(2000, seed=900)


@pytest.fixture(scope="module")
def reference(ref_rows):
    # sample_rows = all rows: the KS test then sees exactly the rows the independent versions see
    return build_reference(ref_rows, np.zeros(len(ref_rows)), SCHEMA, sample_rows=len(ref_rows))


def psi_scratch(ref: np.ndarray, cur: np.ndarray, numeric: bool) -> float:
    if numeric:
        edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
        edges = edges[edges > ref.min()]
        r = np.array([np.sum(ref < edges[0])] + [np.sum((ref >= a) & (ref < b)) for a, b in zip(edges[:-1], edges[1:],
                     strict=True)] + [np.sum(ref >= edges[-1])], dtype=float)
        c = np.array([np.sum(cur < edges[0])] + [np.sum((cur >= a) & (cur < b)) for a, b in zip(edges[:-1], edges[1:],
                     strict=True)] + [np.sum(cur >= edges[-1])], dtype=float)
    else:
        cats = sorted(set(ref.tolist()) | set(cur.tolist()))
        r = np.array([np.sum(ref == k) for k in cats], dtype=float)
        c = np.array([np.sum(cur == k) for k in cats], dtype=float)
    p, q = np.maximum(r / r.sum(), 1e-4), np.maximum(c / c.sum(), 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_scratch(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    grid = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    d = float(np.max(np.abs(fa - fb)))
    n = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d  # Stephens' correction of the asymptotic distribution
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(max(p, 0.0), 1.0)


def chi2_scratch(ref: np.ndarray, cur: np.ndarray) -> float:
    from scipy.stats import chi2  # only the distribution's tail; the statistic is computed here

    cats = sorted(set(ref.tolist()) | set(cur.tolist()))
    table = np.array([[np.sum(ref == k) for k in cats], [np.sum(cur == k) for k in cats]], dtype=float)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return float(chi2.sf(stat, df=len(cats) - 1))


def text(values) -> np.ndarray:
    arr = np.asarray(values)
    return np.where(arr, "True", "False") if arr.dtype == bool else arr.astype(str)


@pytest.mark.parametrize("drift", [0.0, 0.5, 1.0])
def test_kit_agrees_with_a_from_scratch_implementation(reference, ref_rows, drift):
    cur = make_transactions(3000, seed=901, drift=drift)
    result = detect_drift(reference, cur)
    for name in NUMERIC:
        a, b = ref_rows[name].to_numpy(float), cur[name].to_numpy(float)
        f = result.get(name)
        assert f.psi == pytest.approx(psi_scratch(a, b, True), abs=1e-6)
        d, p = ks_scratch(a, b)
        assert f.statistic == pytest.approx(d, abs=1e-12)
        assert f.p_value == pytest.approx(p, abs=0.02)  # scipy: exact/asymptotic; here: asymptotic
    for name in CATEGORICAL:
        a, b = text(ref_rows[name]), text(cur[name])
        f = result.get(name)
        assert f.psi == pytest.approx(psi_scratch(a, b, False), abs=1e-6)
        assert f.p_value == pytest.approx(chi2_scratch(a, b), rel=1e-6, abs=1e-12)


def test_the_false_alarm_decision_is_per_window_not_per_feature(reference):
    """With Bonferroni the window flags at most ``alpha`` of the time; per-feature tests at alpha would not."""
    flags, loose = [], []
    for seed in range(40):
        cur = make_transactions(1000, seed=2000 + seed)
        flags.append(detect_drift(reference, cur).flagged)
        loose.append(bool(detect_drift(reference, cur, alpha=0.05 * 7, min_psi=0.0).flagged))
    assert np.mean(flags) <= 0.05
    assert np.mean(loose) >= np.mean(flags)
