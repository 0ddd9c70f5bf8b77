"""Lab 01 — batch vs real-time: write a chunk loop, a quarantine rule, a latency percentile, and choose."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shipml.checks import Context, Question, Unanswered

TRAIN_ROWS = 5_000
SCORE_ROWS = 12_345
CHUNK_ROWS = 1_000
BAD_IDS = (7, 150, 1_999, 4_000, 11_111)


@lru_cache(maxsize=4)
def _world(seed: int) -> tuple[Path, Path]:
    """A small lr bundle and a Parquet file to score, both made from the seed (cached per process)."""
    from shipml.data import make_transactions, write_table
    from shipml.models import save_bundle, train

    folder = Path(tempfile.mkdtemp(prefix=f"lab01-check-{seed}-"))
    bundle = save_bundle(train(make_transactions(TRAIN_ROWS, seed=seed), "lr", seed=seed), folder / "fraud-lr")
    data = write_table(make_transactions(SCORE_ROWS, seed=seed + 1), folder / "to-score.parquet")
    return bundle, data


@lru_cache(maxsize=4)
def _reference_proba(seed: int) -> np.ndarray:
    from shipml.data import read_table
    from shipml.predictor import load_predictor

    bundle, data = _world(seed)
    return load_predictor(bundle).predict_proba(read_table(data))[:, 1]


# ---- 1. the chunk loop -----------------------------------------------------------------------

def collect_chunks(fn: Any, ctx: Context) -> dict:
    from shipml.predictor import load_predictor

    bundle, data = _world(ctx.seed)
    result = fn(load_predictor(bundle), data, CHUNK_ROWS)
    if result is None:
        raise Unanswered
    proba, sizes = result
    return {"proba": np.asarray(proba, dtype=np.float64).ravel(), "sizes": [int(s) for s in sizes]}


def evaluate_chunks(a: dict, ctx: Context) -> tuple[bool, str]:
    sizes, proba = a["sizes"], a["proba"]
    if not sizes:
        return False, "no chunk sizes came back: append len(batch) for every batch you scored"
    if max(sizes) > CHUNK_ROWS:
        return False, f"a chunk held {max(sizes):,} rows, more than chunk_rows={CHUNK_ROWS:,}: stream the file"
    if sum(sizes) != SCORE_ROWS:
        return False, f"the chunks add up to {sum(sizes):,} rows; the file holds {SCORE_ROWS:,}"
    if proba.shape != (SCORE_ROWS,):
        return False, f"expected {SCORE_ROWS:,} fraud probabilities in file order, got shape {proba.shape}"
    if not np.allclose(proba, _reference_proba(ctx.seed), atol=1e-9):
        return False, "the probabilities differ from the model's: take column 1 of predict_proba, keep file order"
    return True, f"{SCORE_ROWS:,} rows scored in {len(sizes)} chunks of at most {CHUNK_ROWS:,}"


# ---- 2. the quarantine rule ------------------------------------------------------------------

def bad_frame(seed: int):
    """Rows to split: valid ones plus one bad value in each row of BAD_IDS."""
    import pandas as pd

    from shipml.data import make_transactions

    df = make_transactions(12_000, seed=seed + 2).astype({"amount": "float64", "hour": "float64"})
    df["merchant_category"] = df["merchant_category"].astype(str)
    changes = [("amount", -10.0), ("hour", 31.0), ("amount", float("nan")), ("merchant_category", "casino"),
               ("hour", 2.5)]
    for row_id, (column, value) in zip(BAD_IDS, changes, strict=True):
        df.loc[df.id == row_id, column] = value
    return pd.DataFrame(df)


def collect_split(fn: Any, ctx: Context) -> dict:
    from shipml.data import SCHEMA

    df = bad_frame(ctx.seed)
    result = fn(df, SCHEMA)
    if result is None:
        raise Unanswered
    good, bad = result
    return {"rows": len(df), "good_ids": sorted(int(i) for i in good["id"]),
            "bad_ids": sorted(int(i) for i in bad["id"]),
            "reasons": [str(r) for r in bad["reason"]] if "reason" in bad else [],
            "bad_amounts": [float(v) for v in bad["amount"]] if "amount" in bad else []}


def evaluate_split(a: dict, ctx: Context) -> tuple[bool, str]:
    good, bad = set(a["good_ids"]), set(a["bad_ids"])
    if len(good) + len(bad) != a["rows"] or good & bad:
        return False, (f"{len(good):,} good + {len(bad):,} quarantined rows != {a['rows']:,} rows in: "
                       "every row must land on exactly one side")
    if bad != set(BAD_IDS):
        return False, f"quarantined ids {sorted(bad)[:8]}; the bad rows are {list(BAD_IDS)}"
    if len(a["reasons"]) != len(bad) or not all(r.strip() for r in a["reasons"]):
        return False, "every quarantined row needs a non-empty 'reason' column (the validation's reasons)"
    if -10.0 not in a["bad_amounts"]:
        return False, "keep the original values in the quarantined rows (amount -10 became something else)"
    return True, f"{len(good):,} rows to score, {len(bad)} quarantined with their reasons, none lost"


# ---- 3. a latency percentile -----------------------------------------------------------------

def _samples(seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [rng.lognormal(0.0, 0.7, 1_000).tolist(), rng.exponential(2.0, 37).tolist(), [4.0], [1.0, 2.0]]


QS = (50, 90, 95, 99, 100, 0)


def collect_percentile(fn: Any, ctx: Context) -> list[list[float]]:
    out = []
    for samples in _samples(ctx.seed):
        values = [fn(list(samples), q) for q in QS]
        if any(v is None for v in values):
            raise Unanswered
        out.append([float(v) for v in values])
    return out


def evaluate_percentile(a: list, ctx: Context) -> tuple[bool, str]:
    for samples, got in zip(_samples(ctx.seed), a, strict=True):
        want = np.percentile(samples, QS)
        if not np.allclose(got, want, rtol=1e-9, atol=1e-12):
            i = int(np.argmax(~np.isclose(got, want, rtol=1e-9, atol=1e-12)))
            return False, (f"for {len(samples)} samples, p{QS[i]} should be {want[i]:.6g}, you gave {got[i]:.6g}")
    return True, "p50/p95/p99 computed like numpy's default (linear interpolation between ranks)"


# ---- 4. choose ---------------------------------------------------------------------------------

SCENARIOS = {
    "card payment authorisation": "realtime",
    "nightly credit-limit review of every account": "batch",
    "monthly churn scores for the marketing team": "batch",
    "product recommendations while the customer browses": "realtime",
    "re-scoring ten years of transactions with a new model": "batch",
}


def collect_choice(choice: Any, ctx: Context) -> dict:
    if not isinstance(choice, dict) or all(v is None for v in choice.values()):
        raise Unanswered
    return {str(k): str(v).strip().lower().replace("-", "").replace(" ", "") for k, v in choice.items()}


def evaluate_choice(a: dict, ctx: Context) -> tuple[bool, str]:
    missing = [s for s in SCENARIOS if s not in a]
    if missing:
        return False, f"no answer for: {missing[0]!r}"
    wrong = [s for s, want in SCENARIOS.items() if a[s] != want]
    if wrong:
        return False, f"{len(wrong)} scenario(s) not right, e.g. {wrong[0]!r}: does someone wait for the answer?"
    return True, "batch when nobody waits and volume is large; real-time when a person or a payment waits"


QUESTIONS = [
    Question("chunks", 3, collect_chunks, evaluate_chunks,
             "pq.ParquetFile(path).iter_batches(batch_size=chunk_rows); for each batch: batch.to_pandas(), "
             "predictor.predict_proba(frame)[:, 1]; collect the pieces and np.concatenate them",
             "Write the chunk loop"),
    Question("split", 3, collect_split, evaluate_split,
             "v = schema.validate(df); bad rows are df[v.bad_rows]; add v.reasons as a 'reason' column",
             "Write a quarantine rule"),
    Question("percentile", 2, collect_percentile, evaluate_percentile,
             "sort the samples; position = (n - 1) * q / 100; interpolate between the two closest values",
             "Compute a latency percentile"),
    Question("choice", 1, collect_choice, evaluate_choice,
             "ask: does a person or a payment wait for this answer? then 'realtime', else 'batch'",
             "Batch or real-time?"),
]
