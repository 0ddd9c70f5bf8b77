"""Answer keys of lab 06 (grader-only): the reference computations every lab06 verdict is judged against."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from shipml.checks import Context
from shipml.checks import lab06 as lab

FALSE_ALARM_SEEDS = 40
DETECT_WINDOWS = 20


@lru_cache(maxsize=8)
def _reference(seed: int) -> Any:
    return lab.lab_reference(seed)


def evaluate_psi_function(got: list, ctx: Context) -> tuple[bool, str]:
    from shipml.monitoring.drift import psi

    want = [psi(r, c) for r, c in lab.psi_cases(ctx.seed)]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if abs(g - w) > 1e-6 * max(1.0, abs(w)):
            return False, f"case {i + 1}: your PSI is {g:.6f}, which is not the PSI of these counts"
    return True, f"PSI of {len(want)} count vectors matches the kit's"


def expected_amount_psi(seed: int) -> float:
    from shipml.monitoring.drift import psi

    profile = _reference(seed).features["amount"]
    return psi(profile.counts, profile.bin_counts(lab.amount_window(seed)["amount"]))


def evaluate_amount_psi(got: float, ctx: Context) -> tuple[bool, str]:
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


def evaluate_window_size(got: dict, ctx: Context) -> tuple[bool, str]:
    false, hits = window_quality(got["rows"], ctx.seed)
    if false > 0.05:
        return False, f"{got['rows']} rows: {false:.0%} of calm windows flag (at most 5 % allowed)"
    if hits < 0.9:
        return False, f"{got['rows']} rows: drift 0.5 is caught in only {hits:.0%} of windows (90 % needed): larger"
    return True, f"{got['rows']} rows: {false:.0%} false alarms, drift 0.5 caught in {hits:.0%} of windows"


def expected_drifted(seed: int) -> list[str]:
    from shipml.monitoring.drift import detect_drift

    return sorted(detect_drift(_reference(seed), lab.mystery_window(seed)).drifted)


def evaluate_drifted(got: list, ctx: Context) -> tuple[bool, str]:
    want = expected_drifted(ctx.seed)
    if got == want:
        return True, f"drifted: {', '.join(want)} (changes: {', '.join(lab.mystery_shifts(ctx.seed))})"
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
    bundle = save_bundle(train(make_transactions(lab.REFERENCE_ROWS, seed=seed), "lr", seed=seed), out)
    return load_predictor(bundle)


def expected_drop_window(seed: int) -> int | None:
    from shipml.monitoring.performance import find_drop, performance_by_window
    from shipml.monitoring.reference import load_reference

    predictor = _predictor(seed)
    log = lab.performance_log(predictor, seed)
    table = performance_by_window(log, lab.LOG_WINDOW_ROWS, min_labels=200)
    return find_drop(table, load_reference(predictor.path).metrics)


def evaluate_drop_window(got: int | None, ctx: Context) -> tuple[bool, str]:
    want = expected_drop_window(ctx.seed)
    if got != want:
        return False, (f"window {got} is not the first dropped window (ROC AUC more than 0.05 below the held-out one, "
                       "or calibration error more than 0.02 above it)")
    return True, f"performance dropped in window {want}, where the world changed"
