"""Lab 06 — monitoring: PSI by hand, a window size you can defend, which features drifted, where performance dropped.

Every expected answer here is what the kit's own public functions compute on the lab's seeded data — the
lab asks students to *compare with the kit* — so nothing here is secret and the same evaluate functions
give instant feedback in the notebook and the grader's verdict (:mod:`shipml.grading.keys.lab06` exports
them as ``EVALUATE`` and precomputes them per seed in ``WARM``). What cannot be forged is the *plain data*:
``collect`` runs the student's code and the grader re-evaluates the exported answer in its own process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from shipml.checks import Context, Question

REFERENCE_ROWS = 20_000
WINDOW_ROWS = 3_000
ROWS_PER_HOUR = 1_000
LOG_WINDOWS = 8
LOG_WINDOW_ROWS = 2_000
PSI_CASES = 5


# ---- the lab's data (the same for the student and the grader, from the seed) ---------------------

def lab_reference(seed: int) -> Any:
    """The reference profile of the lab's 'training' traffic (features only; the score is not used here)."""
    from shipml.data import SCHEMA, make_transactions
    from shipml.monitoring.reference import build_reference

    rows = make_transactions(REFERENCE_ROWS, seed=seed)
    return build_reference(rows, np.random.default_rng(seed).random(len(rows)), SCHEMA, seed=seed)


def amount_window(seed: int) -> pd.DataFrame:
    """This week's traffic for question 2 (a little inflation)."""
    from shipml.data import make_transactions

    return make_transactions(WINDOW_ROWS, seed=seed + 11, drift=0.3)


def psi_cases(seed: int) -> list[tuple[list[int], list[int]]]:
    """Count vectors (no empty bin) for question 1."""
    rng = np.random.default_rng(seed + 5)
    cases = []
    for k in range(PSI_CASES):
        bins = 4 + k
        ref = rng.integers(20, 500, bins)
        cur = rng.integers(20, 500, bins)
        cases.append((ref.tolist(), cur.tolist()))
    return cases


MYSTERY_SHIFTS = ("prices", "later_hours", "online_mix", "distance_in_metres")


def mystery_shifts(seed: int) -> list[str]:
    """Which shifts the mystery window has (two of four, from the seed)."""
    rng = np.random.default_rng(seed + 23)
    return sorted(rng.choice(MYSTERY_SHIFTS, size=2, replace=False).tolist())


def mystery_window(seed: int) -> pd.DataFrame:
    """Question 4's window: today's traffic with two changes (the world's, or a bug upstream's)."""
    from shipml.data import make_transactions

    calm = make_transactions(WINDOW_ROWS, seed=seed + 31)
    changed = make_transactions(WINDOW_ROWS, seed=seed + 31, drift=1.0)
    out = calm.copy()
    shifts = mystery_shifts(seed)
    if "prices" in shifts:
        out["amount"] = changed["amount"]
    if "later_hours" in shifts:
        out["hour"] = changed["hour"]
    if "online_mix" in shifts:
        out["merchant_category"] = changed["merchant_category"]
        out["card_present"] = changed["card_present"]
    if "distance_in_metres" in shifts:  # a unit changed upstream: km became metres
        out["distance_from_home_km"] = out["distance_from_home_km"] * 1000
    return out


def drift_start_window(seed: int) -> int:
    return 3 + seed % 3


def performance_log(predictor: Any, seed: int) -> pd.DataFrame:
    """Question 5's log: ``LOG_WINDOWS`` windows of scored traffic with their (late) labels; the world changes."""
    from shipml.data import SCHEMA, make_transactions

    start = drift_start_window(seed)
    parts = []
    for w in range(LOG_WINDOWS):
        drift = 0.0 if w < start else 1.0
        parts.append(make_transactions(LOG_WINDOW_ROWS, seed=seed + 40 + w, drift=drift, start_id=w * LOG_WINDOW_ROWS))
    frame = pd.concat(parts, ignore_index=True)
    frame["score"] = predictor.predict_proba(frame[SCHEMA.names])[:, 1]
    frame["time"] = pd.Timestamp("2026-03-01", tz="UTC") + pd.to_timedelta(np.arange(len(frame)) * 3.6, unit="s")
    frame["id"] = "tx-" + frame["id"].astype(str)
    return frame.rename(columns={"is_fraud": "label"})


FALSE_ALARM_SEEDS = 40
DETECT_WINDOWS = 20


# ---- the expected answers (the kit's public functions on the lab's data) --------------------------


@lru_cache(maxsize=8)
def _reference(seed: int) -> Any:
    return lab_reference(seed)


def expected_psi_function(got: list, ctx: Context) -> tuple[bool, str]:
    from shipml.monitoring.drift import psi

    want = [psi(r, c) for r, c in psi_cases(ctx.seed)]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if abs(g - w) > 1e-6 * max(1.0, abs(w)):
            return False, f"case {i + 1}: your PSI is {g:.6f}, which is not the PSI of these counts"
    return True, f"PSI of {len(want)} count vectors matches the kit's"


def expected_amount_psi(seed: int) -> float:
    from shipml.monitoring.drift import psi

    profile = _reference(seed).features["amount"]
    return psi(profile.counts, profile.bin_counts(amount_window(seed)["amount"]))


def expected_amount_psi_verdict(got: float, ctx: Context) -> tuple[bool, str]:
    want = expected_amount_psi(ctx.seed)
    if abs(got - want) > 1e-4:
        side = "high" if got > want else "low"
        return False, f"PSI of amount {got:.4f} is too {side}: bin the window with the reference's own edges"
    return True, f"PSI of amount = {want:.4f} ({'moderate' if want >= 0.1 else 'stable'}), as the kit computes it"


@lru_cache(maxsize=32)
def window_quality(rows: int, seed: int) -> tuple[float, float]:
    """(false-alarm rate on calm windows, detection rate at drift 0.5) for windows of ``rows`` rows."""
    from shipml.data import make_transactions
    from shipml.monitoring.drift import detect_drift

    reference = _reference(seed)
    calm = make_transactions(rows * FALSE_ALARM_SEEDS, seed=seed + 900)
    drifted = make_transactions(rows * DETECT_WINDOWS, seed=seed + 901, drift=0.5)
    false = [detect_drift(reference, calm.iloc[i * rows:(i + 1) * rows]).flagged for i in range(FALSE_ALARM_SEEDS)]
    hits = [detect_drift(reference, drifted.iloc[i * rows:(i + 1) * rows]).flagged for i in range(DETECT_WINDOWS)]
    return float(np.mean(false)), float(np.mean(hits))


def expected_window_size(got: dict, ctx: Context) -> tuple[bool, str]:
    false, hits = window_quality(got["rows"], ctx.seed)
    if false > 0.05:
        return False, f"{got['rows']} rows: {false:.0%} of calm windows flag (at most 5 % allowed)"
    if hits < 0.9:
        return False, f"{got['rows']} rows: drift 0.5 is caught in only {hits:.0%} of windows (90 % needed): larger"
    return True, f"{got['rows']} rows: {false:.0%} false alarms, drift 0.5 caught in {hits:.0%} of windows"


def expected_drifted(seed: int) -> list[str]:
    from shipml.monitoring.drift import detect_drift

    return sorted(detect_drift(_reference(seed), mystery_window(seed)).drifted)


def expected_drifted_verdict(got: list, ctx: Context) -> tuple[bool, str]:
    want = expected_drifted(ctx.seed)
    if got == want:
        return True, f"drifted: {', '.join(want)} (changes: {', '.join(mystery_shifts(ctx.seed))})"
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    parts = ([f"{len(missing)} drifted feature(s) missing"] if missing else []) + (
        [f"{', '.join(extra)} did not drift"] if extra else [])
    return False, "; ".join(parts)


@lru_cache(maxsize=8)
def _predictor(seed: int) -> Any:
    import tempfile
    from pathlib import Path

    from shipml.data import make_transactions
    from shipml.models import save_bundle, train
    from shipml.predictor import load_predictor

    out = Path(tempfile.mkdtemp(prefix="lab06-key-")) / "fraud-lr"
    bundle = save_bundle(train(make_transactions(REFERENCE_ROWS, seed=seed), "lr", seed=seed), out)
    return load_predictor(bundle)


def expected_drop_window(seed: int) -> int | None:
    from shipml.monitoring.performance import find_drop, performance_by_window
    from shipml.monitoring.reference import load_reference

    predictor = _predictor(seed)
    log = performance_log(predictor, seed)
    table = performance_by_window(log, LOG_WINDOW_ROWS, min_labels=200)
    return find_drop(table, load_reference(predictor.path).metrics)


def expected_drop_window_verdict(got: int | None, ctx: Context) -> tuple[bool, str]:
    want = expected_drop_window(ctx.seed)
    if got != want:
        return False, (f"window {got} is not the first dropped window (ROC AUC more than 0.05 below the held-out one, "
                       "or calibration error more than 0.02 above it)")
    return True, f"performance dropped in window {want}, where the world changed"


# ---- 1. PSI, by hand -----------------------------------------------------------------------------

def collect_psi_function(fn: Any, ctx: Context) -> list:
    return [float(fn(np.asarray(r), np.asarray(c))) for r, c in psi_cases(ctx.seed)]


def evaluate_psi_function(got: list, ctx: Context) -> tuple[bool, str]:
    if len(got) != PSI_CASES or not all(np.isfinite(got)):
        return False, f"expected {PSI_CASES} finite numbers, got {got}"
    return expected_psi_function(got, ctx)


# ---- 2. PSI of one feature ------------------------------------------------------------------------

def collect_amount_psi(value: Any, ctx: Context) -> float:
    return float(value)


def evaluate_amount_psi(got: float, ctx: Context) -> tuple[bool, str]:
    if not np.isfinite(got) or got < 0:
        return False, f"PSI is a non-negative number; got {got}"
    return expected_amount_psi_verdict(got, ctx)


# ---- 3. a window size -----------------------------------------------------------------------------

def collect_window_size(answer: Any, ctx: Context) -> dict:
    return {"rows": int(answer["rows"]), "reason": str(answer["reason"])}


def evaluate_window_size(got: dict, ctx: Context) -> tuple[bool, str]:
    if not 100 <= got["rows"] <= 2 * ROWS_PER_HOUR:
        return False, (f"{got['rows']} rows: the team needs an alarm within 2 hours ({2 * ROWS_PER_HOUR:,} rows at "
                       f"{ROWS_PER_HOUR:,} rows/hour), and drift needs at least 100 rows")
    if len(got["reason"].split()) < 12:
        return False, "defend your choice in a sentence or two (what a smaller and a larger window would cost)"
    return expected_window_size(got, ctx)


# ---- 4. which features drifted ------------------------------------------------------------------

def collect_drifted(answer: Any, ctx: Context) -> list:
    return sorted(str(a) for a in answer)


def evaluate_drifted(got: list, ctx: Context) -> tuple[bool, str]:
    from shipml.data import SCHEMA

    unknown = sorted(set(got) - set(SCHEMA.names))
    if unknown:
        return False, f"{unknown} are not features; the features are {SCHEMA.names}"
    return expected_drifted_verdict(got, ctx)


# ---- 5. where performance dropped -----------------------------------------------------------------

def collect_drop_window(answer: Any, ctx: Context) -> int | None:
    return None if answer is None else int(answer)


def evaluate_drop_window(got: int | None, ctx: Context) -> tuple[bool, str]:
    if got is not None and not 0 <= got < LOG_WINDOWS:
        return False, f"window {got}: the log has windows 0 to {LOG_WINDOWS - 1}"
    return expected_drop_window_verdict(got, ctx)


QUESTIONS = [
    Question("psi_function", 2, collect_psi_function, evaluate_psi_function,
             "shares first (counts / their sum), then sum (q - p) * ln(q / p) over the bins", "PSI by hand"),
    Question("amount_psi", 2, collect_amount_psi, evaluate_amount_psi,
             "count the window's amounts in the reference's bins: np.searchsorted(edges, x, side='right') gives each "
             "value's bin, np.bincount the counts", "PSI of one feature"),
    Question("window_size", 2, collect_window_size, evaluate_window_size,
             "try a few sizes with the helper: how often do calm windows flag, how often does drift 0.5 get caught?",
             "Choose a window size"),
    Question("drifted_features", 2, collect_drifted, evaluate_drifted,
             "run the kit's drift detection on the window and read which features it flags (and ask why each one)",
             "Which features drifted?"),
    Question("drop_window", 2, collect_drop_window, evaluate_drop_window,
             "compare each window's ROC AUC and calibration error with the baseline's (windows whose status is ok)",
             "Where did performance drop?"),
]
