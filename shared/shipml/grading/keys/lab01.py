"""Answer keys of lab01 (grader only): the reference probabilities of the file to score, the rows that
must be quarantined, numpy's percentiles on the seeded samples, and the scenario table."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from shipml.checks import Context
from shipml.checks import lab01 as public


@lru_cache(maxsize=4)
def reference_proba(seed: int) -> np.ndarray:
    from shipml.data import make_transactions
    from shipml.models import train

    pipeline = train(make_transactions(public.TRAIN_ROWS, seed=seed), "lr", seed=seed).pipeline
    return pipeline.predict_proba(make_transactions(public.SCORE_ROWS, seed=seed + 1))[:, 1]


def evaluate_chunks(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_chunks(a, ctx)
    if not ok:
        return ok, message
    want = reference_proba(ctx.seed)[public.sample_positions(ctx.seed)]
    if not np.allclose(np.asarray(a["proba_sample"], dtype=np.float64), want, atol=1e-9):
        return False, "the probabilities differ from the model's: column 1 of predict_proba, in file order"
    return True, message


@lru_cache(maxsize=4)
def bad_ids(seed: int) -> frozenset[int]:
    from shipml.data import SCHEMA

    df = public.bad_frame(seed)
    return frozenset(int(i) for i in df["id"][SCHEMA.validate(df).bad_rows])


def evaluate_split(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_split(a, ctx)
    if not ok:
        return ok, message
    want, got = bad_ids(ctx.seed), set(a["bad_ids"])
    if got != want:
        extra, missed = sorted(got - want), sorted(want - got)
        return False, (f"{len(missed)} bad row(s) not quarantined and {len(extra)} good row(s) quarantined "
                       f"(ids {(missed or extra)[:3]}): quarantine exactly the rows the schema refuses")
    return True, message


def evaluate_percentile(a: list, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_percentile(a, ctx)
    if not ok:
        return ok, message
    for samples, got in zip(public._samples(ctx.seed), a, strict=True):
        want = np.percentile(samples, public.QS)
        if not np.allclose(got, want, rtol=1e-9, atol=1e-12):
            i = int(np.argmax(~np.isclose(got, want, rtol=1e-9, atol=1e-12)))
            return False, f"for {len(samples)} samples, p{public.QS[i]} should be {want[i]:.6g}, you gave {got[i]:.6g}"
    return True, "p50/p95/p99 computed like numpy's default (linear interpolation between ranks)"


SCENARIOS = {
    "card payment authorisation": "realtime",
    "nightly credit-limit review of every account": "batch",
    "monthly churn scores for the marketing team": "batch",
    "product recommendations while the customer browses": "realtime",
    "re-scoring ten years of transactions with a new model": "batch",
}


def evaluate_choice(a: dict, ctx: Context) -> tuple[bool, str]:
    ok, message = public.evaluate_choice(a, ctx)
    if not ok:
        return ok, message
    wrong = [s for s, want in SCENARIOS.items() if a[s] != want]
    if wrong:
        return False, f"{len(wrong)} scenario(s) not right, e.g. {wrong[0]!r}: does someone wait for the answer?"
    return True, "batch when nobody waits and volume is large; real-time when a person or a payment waits"


EVALUATE = {"chunks": evaluate_chunks, "split": evaluate_split, "percentile": evaluate_percentile,
            "choice": evaluate_choice}


def WARM(seed: int) -> None:  # noqa: N802 (the keys contract's name)
    reference_proba(seed)
    bad_ids(seed)
