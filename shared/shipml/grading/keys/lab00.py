"""Answer keys of lab00 (grader only): the seeded data's fingerprint, the reference hgb model's
probabilities, and what the kit's loader must answer for each tampered bundle."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from shipml.checks import Context
from shipml.checks import lab00 as public


@lru_cache(maxsize=4)
def reference(seed: int) -> tuple[str, np.ndarray]:
    """(fingerprint of the seeded frame, fraud probabilities of its first 5 rows by the seeded hgb model)."""
    from shipml.data import fingerprint, make_transactions
    from shipml.models import train

    df = make_transactions(public.ROWS, seed=seed)
    return fingerprint(df), train(df, "hgb", seed=seed).pipeline.predict_proba(df.head(5))[:, 1]


@lru_cache(maxsize=4)
def refusal_reference(seed: int) -> dict[str, np.ndarray]:
    """Fraud probabilities of the probe rows by the intact small bundle and by the model swapped in."""
    from shipml.models import train

    train_df, other_df, probe = public.small_bundle_frames(seed)
    return {"intact": train(train_df, "lr", seed=seed).pipeline.predict_proba(probe)[:, 1],
            "model_swapped_and_rehashed": train(other_df, "lr", seed=seed + 1).pipeline.predict_proba(probe)[:, 1]}


# What the kit's loader says for each changed bundle: refused, naming the file that gives it away.
REFUSED_NAMING = {"model_bit_flipped": "model.joblib", "metadata_edited": "metadata.json",
                  "file_added": "NOTES.txt"}


def evaluate_data(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_data(a, ctx)
    if ok and a["fingerprint"] != reference(ctx.seed)[0]:
        return False, "the rows differ from the seeded ones: did you pass the lab's seed?"
    return ok, message


def evaluate_bundle(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_bundle(a, ctx)
    if ok and a["fingerprint"] != reference(ctx.seed)[0]:
        return False, "the bundle was trained on other data than the frame from question 1"
    return ok, message


def evaluate_proba(p: np.ndarray, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_proba(p, ctx)
    if ok and not np.allclose(p, reference(ctx.seed)[1], atol=1e-6):
        return False, "these are not the fraud probabilities of your bundle for the first 5 rows"
    return ok, message


def evaluate_refusal(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_refusal(a, ctx)
    if not ok:
        return ok, message
    kinds = public.case_order(ctx.seed)
    if len(a["cases"]) != len(kinds):
        return False, f"{len(a['cases'])} answers for {len(kinds)} bundles"
    probes = refusal_reference(ctx.seed)
    for n, (kind, case) in enumerate(zip(kinds, a["cases"], strict=True)):
        if kind in REFUSED_NAMING:
            if case["outcome"] != "refused":
                return False, f"bundle {n} was changed after it was made, and your function did not refuse it"
            if REFUSED_NAMING[kind] not in case["message"]:
                return False, (f"the refusal of bundle {n} is not the kit's own (it names the file that changed): "
                               f"{case['message'][:120]!r}")
        else:
            if case["outcome"] != "loaded":
                return False, f"bundle {n} verifies, and your function did not load it"
            if not np.allclose(np.asarray(case["proba"], dtype=np.float64), probes[kind], atol=1e-9):
                return False, f"the predictor loaded from bundle {n} does not answer with that bundle's model"
    return True, ("the intact bundle loaded, the three changed ones were refused by the kit, and the swapped "
                  "model with rewritten hashes loaded: hashes catch accidents, not someone who can write the folder")


EVALUATE = {"data": evaluate_data, "bundle": evaluate_bundle, "proba": evaluate_proba, "refusal": evaluate_refusal}


def WARM(seed: int) -> None:  # noqa: N802 (the keys contract's name)
    reference(seed)
    refusal_reference(seed)
