"""Lab 06 — monitoring: PSI by hand, a window size you can defend, which features drifted, where performance dropped.

What the student's kernel needs lives here: the lab's data (made from the seed) and ``collect``. The
expected answers are computed by :mod:`shipml.grading.keys.lab06` (grader-only: not importable in the
grader's sandbox); in a plain notebook the check cells import it for instant feedback, and where it is
absent they say the answer was recorded for grading.
"""

from __future__ import annotations

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


def _keys() -> Any:
    try:
        from shipml.grading.keys import lab06
    except ImportError:  # the grader's sandbox: the answer is judged outside the kernel
        return None
    return lab06


def _judge(name: str, got: Any, ctx: Context) -> tuple[bool, str]:
    keys = _keys()
    if keys is None:
        return True, "answer recorded; it is graded outside this notebook"
    return getattr(keys, name)(got, ctx)


# ---- 1. PSI, by hand -----------------------------------------------------------------------------

def collect_psi_function(fn: Any, ctx: Context) -> list:
    return [float(fn(np.asarray(r), np.asarray(c))) for r, c in psi_cases(ctx.seed)]


def evaluate_psi_function(got: list, ctx: Context) -> tuple[bool, str]:
    if len(got) != PSI_CASES or not all(np.isfinite(got)):
        return False, f"expected {PSI_CASES} finite numbers, got {got}"
    return _judge("evaluate_psi_function", got, ctx)


# ---- 2. PSI of one feature ------------------------------------------------------------------------

def collect_amount_psi(value: Any, ctx: Context) -> float:
    return float(value)


def evaluate_amount_psi(got: float, ctx: Context) -> tuple[bool, str]:
    if not np.isfinite(got) or got < 0:
        return False, f"PSI is a non-negative number; got {got}"
    return _judge("evaluate_amount_psi", got, ctx)


# ---- 3. a window size -----------------------------------------------------------------------------

def collect_window_size(answer: Any, ctx: Context) -> dict:
    return {"rows": int(answer["rows"]), "reason": str(answer["reason"])}


def evaluate_window_size(got: dict, ctx: Context) -> tuple[bool, str]:
    if not 100 <= got["rows"] <= 2 * ROWS_PER_HOUR:
        return False, (f"{got['rows']} rows: the team needs an alarm within 2 hours ({2 * ROWS_PER_HOUR:,} rows at "
                       f"{ROWS_PER_HOUR:,} rows/hour), and drift needs at least 100 rows")
    if len(got["reason"].split()) < 12:
        return False, "defend your choice in a sentence or two (what a smaller and a larger window would cost)"
    return _judge("evaluate_window_size", got, ctx)


# ---- 4. which features drifted ------------------------------------------------------------------

def collect_drifted(answer: Any, ctx: Context) -> list:
    return sorted(str(a) for a in answer)


def evaluate_drifted(got: list, ctx: Context) -> tuple[bool, str]:
    from shipml.data import SCHEMA

    unknown = sorted(set(got) - set(SCHEMA.names))
    if unknown:
        return False, f"{unknown} are not features; the features are {SCHEMA.names}"
    return _judge("evaluate_drifted", got, ctx)


# ---- 5. where performance dropped -----------------------------------------------------------------

def collect_drop_window(answer: Any, ctx: Context) -> int | None:
    return None if answer is None else int(answer)


def evaluate_drop_window(got: int | None, ctx: Context) -> tuple[bool, str]:
    if got is not None and not 0 <= got < LOG_WINDOWS:
        return False, f"window {got}: the log has windows 0 to {LOG_WINDOWS - 1}"
    return _judge("evaluate_drop_window", got, ctx)


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
