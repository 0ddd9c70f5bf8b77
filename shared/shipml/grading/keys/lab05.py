"""Answer keys of lab05 (grader only): tensor types, feed dtypes and values, the reference hgb model
whose probabilities a repaired export must give, parity expectations and the update decisions."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from shipml.checks import Context
from shipml.checks import lab05 as public

# ---- 1. input types -------------------------------------------------------------------------------


def evaluate_input_types(got: list, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_input_types(got, ctx)
    if not ok:
        return ok, message
    for (name, kind, _shape), f in zip(got, public._schema().features, strict=True):
        want = "StringTensorType" if f.dtype == "category" else "FloatTensorType"
        if kind != want:
            extra = " (float64: the classic mistake — the graph works in float32)" if kind == "DoubleTensorType" else ""
            return False, f"'{name}' is a {kind}; a {f.dtype} feature needs {want}{extra}"
    return True, "one named input per feature: float32 for numbers, strings for the category"


# ---- 2. feeds -------------------------------------------------------------------------------------


def evaluate_feeds(got: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_feeds(got, ctx)
    if not ok:
        return ok, message
    rows = public._feed_rows(ctx.seed)
    for f in public._schema().features:
        g = got[f.name]
        if f.dtype == "category":
            if g["kind"] not in "OU":
                return False, f"'{f.name}' is {g['dtype']}; the category input wants strings"
            if list(g["values"]) != [str(v) for v in rows[f.name]]:
                return False, f"'{f.name}' does not hold the rows' merchant categories"
            continue
        if g["dtype"] != "float32":
            return False, f"'{f.name}' is {g['dtype']}; the graph expects float32"
        if not np.array_equal(np.asarray(g["values"]), rows[f.name].to_numpy(dtype=np.float32).astype(np.float64)):
            return False, f"'{f.name}' does not hold the rows' values"
    return True, f"{len(got)} inputs of shape ({public.FEED_ROWS}, 1), float32 and strings"


# ---- 3. the repaired export answers with the model's probabilities --------------------------------

AGREE_WITHIN = 1e-4  # |p_onnx - p_sklearn| per row (float32 arithmetic)
MIN_ROWS_WITHIN = 0.95  # trees: a float32 cast can cross a threshold on a few rows (notebook 05)


@lru_cache(maxsize=4)
def session_reference(seed: int) -> np.ndarray:
    """Probabilities of the lab's hgb model (trained as the lab's setup cell does) on the session rows."""
    from shipml.data import make_transactions
    from shipml.models import train

    pipeline = train(make_transactions(20_000, seed=seed), "hgb", seed=seed).pipeline
    return pipeline.predict_proba(public.session_rows(seed))


def evaluate_session(got: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_session(got, ctx)
    if not ok:
        return ok, message
    if not str(got.get("module", "")).startswith("onnxruntime"):
        return False, f"that is a {got.get('module')} object, not an onnxruntime InferenceSession"
    want = session_reference(ctx.seed)
    diff = np.abs(np.asarray(got["proba"], dtype=np.float64) - want).max(axis=1)
    within = float((diff <= AGREE_WITHIN).mean())
    if within < MIN_ROWS_WITHIN:
        return False, (f"on the grader's {len(diff)} rows only {within:.0%} of your graph's probabilities are within "
                       f"{AGREE_WITHIN:g} of the hgb model's: export the lab's hgb pipeline")
    return True, (f"the repaired graph answers like the hgb model on {within:.0%} of the grader's rows "
                  f"(largest gap {diff.max():.2g})")


# ---- 4. parity ------------------------------------------------------------------------------------


def expected_parity(seed: int) -> dict:
    ref, cand = public._parity_case(seed)
    cand = cand.astype(np.float64)
    return {"max_abs_diff": float(np.abs(ref - cand).max()),
            "label_flips": int((ref.argmax(1) != cand.argmax(1)).sum())}


def evaluate_parity(got: dict, ctx: Context) -> tuple[bool, str]:
    want = expected_parity(ctx.seed)
    if not np.isclose(got["max_abs_diff"], want["max_abs_diff"], rtol=1e-6, atol=1e-9):
        return False, (f"max_abs_diff is {got['max_abs_diff']:.6g}; it is the largest |p_sklearn - p_onnx| over all "
                       "rows and classes")
    if got["label_flips"] != want["label_flips"]:
        return False, f"label_flips is {got['label_flips']}; count rows whose argmax differs between the two"
    return True, f"max |Δp| {want['max_abs_diff']:.3g}, {want['label_flips']} label flips"


# ---- 7. the update decisions ----------------------------------------------------------------------

DECISION_OF = {"v3": "install", "v2-again": "stale", "v1": "stale", "v4-bit-flipped": "corrupt",
               "v3-relabelled-v5": "corrupt", "other-model-v6": "wrong_model"}
WHY = {"install": "intact, the device's model, newer", "stale": "intact but not newer than version 2",
       "corrupt": "the kit refuses it (a file does not match SHA256SUMS)",
       "wrong_model": "intact and newer, but another model's bundle"}


def evaluate_fleet(got: list, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_fleet(got, ctx)
    if not ok:
        return ok, message
    kinds = public.candidate_order(ctx.seed)
    if len(got) != len(kinds):
        return False, f"{len(got)} decisions for {len(kinds)} downloads"
    for n, (kind, have) in enumerate(zip(kinds, got, strict=True)):
        want = DECISION_OF[kind]
        if have != want:
            return False, f"download {n}: you decided {have!r}; it is {WHY[want]}"
    return True, "installs only an intact, newer bundle of its own model; refuses corrupt ones, skips the rest"


EVALUATE = {"input_types": evaluate_input_types, "feeds": evaluate_feeds, "session": evaluate_session,
            "parity": evaluate_parity, "fleet": evaluate_fleet}


def WARM(seed: int) -> None:  # noqa: N802 (the keys contract's name)
    session_reference(seed)
