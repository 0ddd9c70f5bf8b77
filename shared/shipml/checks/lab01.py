"""Lab 01 — batch vs real-time: a chunk loop that really streams, a quarantine rule, a latency
percentile, and a decision.

Instant feedback only: the checks observe *how* your function works (how many rows each
``predict_proba`` call got and how much of the file had been read by then), but the reference
probabilities, the bad rows and the scenario answers are the grader's (``shipml.grading.keys.lab01``).
"""

from __future__ import annotations

import tempfile
import tracemalloc
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shipml.checks import Context, Question, Unanswered

TRAIN_ROWS = 5_000
SCORE_ROWS = 123_457
CHUNK_ROWS = 5_000
ROW_GROUP_ROWS = 10_000  # the file is written in row groups, as real Parquet files are
# Memory your function may hold when it scores its first chunk, as a share of the whole table decoded into a
# DataFrame. Reading it all at once holds 100 % or more; streaming holds a chunk, plus (pyarrow >= 2x reads
# the file ahead unless pre_buffer=False) the file's compressed bytes: about 50 % for this file.
HELD_AT_MOST = 0.75


@lru_cache(maxsize=4)
def _world(seed: int) -> tuple[Path, Path]:
    """A small lr bundle and a Parquet file to score, both made from the seed (cached per process)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shipml.data import make_transactions
    from shipml.models import save_bundle, train

    folder = Path(tempfile.mkdtemp(prefix=f"lab01-check-{seed}-"))
    bundle = save_bundle(train(make_transactions(TRAIN_ROWS, seed=seed), "lr", seed=seed), folder / "fraud-lr")
    data = folder / "to-score.parquet"
    table = pa.Table.from_pandas(make_transactions(SCORE_ROWS, seed=seed + 1), preserve_index=False)
    pq.write_table(table, data, row_group_size=ROW_GROUP_ROWS)
    return bundle, data


def _bytes_read() -> int | None:
    """Bytes this process has read from files so far (Linux ``/proc/self/io`` rchar), or None elsewhere."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class ObservedPredictor:
    """The predictor handed to the student's function: it scores like the real one and notes, for
    every call, how many rows it got, how many file bytes had been read and how much memory the
    function held by then (Python/numpy allocations plus Arrow's pool)."""

    def __init__(self, predictor: Any):
        self._predictor = predictor
        self.calls: list[dict] = []
        self._start_read = _bytes_read()
        self._start_arrow = _arrow_bytes()

    def _note(self, data: Any) -> None:
        read = _bytes_read()
        held = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
        self.calls.append({"rows": int(len(data)),
                           "read": None if read is None or self._start_read is None else read - self._start_read,
                           "held": int(held + max(0, _arrow_bytes() - self._start_arrow))})

    def predict_proba(self, data: Any):
        self._note(data)
        return self._predictor.predict_proba(data)

    def predict(self, data: Any):
        self._note(data)
        return self._predictor.predict(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)


def _arrow_bytes() -> int:
    import pyarrow as pa

    return int(pa.total_allocated_bytes())


@lru_cache(maxsize=4)
def _whole_file_cost(seed: int) -> dict:
    """What reading the whole file at once costs: its size, and the memory of the table as a frame."""
    import pyarrow.parquet as pq

    _, data = _world(seed)
    frame = pq.read_table(data).to_pandas()
    return {"file_bytes": data.stat().st_size, "frame_bytes": int(frame.memory_usage(deep=True).sum())}


# ---- 1. the chunk loop -----------------------------------------------------------------------

def collect_chunks(fn: Any, ctx: Context) -> dict:
    from shipml.predictor import load_predictor

    bundle, data = _world(ctx.seed)
    cost = _whole_file_cost(ctx.seed)
    observed = ObservedPredictor(load_predictor(bundle))
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        observed._start_read = _bytes_read()
        result = fn(observed, data, CHUNK_ROWS)
    finally:
        if not tracing:
            tracemalloc.stop()
    if result is None:
        raise Unanswered
    proba, sizes = result
    proba = np.asarray(proba, dtype=np.float64).ravel()
    positions = sample_positions(ctx.seed)  # an answer is plain data, not a data set: a seeded sample of rows
    return {"rows": int(proba.shape[0]), "proba_sample": proba[positions] if proba.shape == (SCORE_ROWS,) else [],
            "sizes": [int(s) for s in sizes], "calls": observed.calls, **cost}


SAMPLE_ROWS = 1_000


def sample_positions(seed: int) -> np.ndarray:
    """The rows whose probabilities are exported (spread over the whole file, chosen by the seed)."""
    return np.sort(np.random.default_rng([3, seed]).choice(SCORE_ROWS, SAMPLE_ROWS, replace=False))


def evaluate_chunks(a: dict, ctx: Context) -> tuple[bool, str]:
    calls = a["calls"]
    if not calls:
        return False, "your function never called the predictor it was given: score with that one"
    rows = [c["rows"] for c in calls]
    if max(rows) > CHUNK_ROWS:
        return False, (f"the predictor was called with {max(rows):,} rows at once, more than chunk_rows="
                       f"{CHUNK_ROWS:,}: score one chunk at a time")
    if sum(rows) != SCORE_ROWS:
        return False, f"the predictor scored {sum(rows):,} rows; the file holds {SCORE_ROWS:,}"
    held = calls[0]["held"] / a["frame_bytes"]
    if held > HELD_AT_MOST:
        return False, (f"when your function scored its first chunk it held {held:.0%} of the whole table in memory: "
                       "the file was read at once, then cut up. Memory must stay at about one chunk, whatever the "
                       "file's size")
    if a["sizes"] != rows:
        return False, f"the chunk sizes you returned ({a['sizes'][:5]}...) are not the ones you scored ({rows[:5]}...)"
    if a["rows"] != SCORE_ROWS:
        return False, f"expected {SCORE_ROWS:,} fraud probabilities in file order, got {a['rows']:,}"
    return True, (f"{SCORE_ROWS:,} rows streamed in {len(rows)} chunks of at most {CHUNK_ROWS:,} (grading also "
                  "compares the probabilities with the model's)")


# ---- 2. the quarantine rule ------------------------------------------------------------------

BAD_ROWS = 5  # how many rows get one bad value (which rows, and how, depends on the seed)


def bad_frame(seed: int):
    """Rows to split: valid ones, and BAD_ROWS rows with one bad value each (chosen by the seed)."""
    import pandas as pd

    from shipml.data import make_transactions

    df = make_transactions(12_000, seed=seed + 2).astype({"amount": "float64", "hour": "float64"})
    df["merchant_category"] = df["merchant_category"].astype(str)
    changes = [("amount", -10.0), ("hour", 31.0), ("amount", float("nan")), ("merchant_category", "casino"),
               ("hour", 2.5), ("distance_from_home_km", -3.0), ("txn_count_24h", -1)]
    rng = np.random.default_rng([2, seed])
    rows = rng.choice(len(df), BAD_ROWS, replace=False)
    for row, k in zip(rows, rng.choice(len(changes), BAD_ROWS, replace=False), strict=True):
        column, value = changes[k]
        df.loc[df.index[row], column] = value
    return pd.DataFrame(df)


def collect_split(fn: Any, ctx: Context) -> dict:
    from shipml.data import SCHEMA

    df = bad_frame(ctx.seed)
    result = fn(df.copy(), SCHEMA)
    if result is None:
        raise Unanswered
    good, bad = result
    by_id = df.set_index("id")
    kept = True
    if len(bad) and "id" in bad:
        original = by_id.loc[[int(i) for i in bad["id"]], [c for c in df.columns if c != "id"]].reset_index(drop=True)
        mine = bad.reset_index(drop=True)[[c for c in df.columns if c != "id"]]
        kept = bool(original.astype(str).equals(mine.astype(str)))
    return {"rows": len(df), "good_ids": sorted(int(i) for i in good["id"]),
            "bad_ids": sorted(int(i) for i in bad["id"]),
            "reasons": [str(r) for r in bad["reason"]] if "reason" in bad else [],
            "values_kept": kept}


def evaluate_split(a: dict, ctx: Context) -> tuple[bool, str]:
    good, bad = set(a["good_ids"]), set(a["bad_ids"])
    if len(good) + len(bad) != a["rows"] or good & bad:
        return False, (f"{len(good):,} good + {len(bad):,} quarantined rows != {a['rows']:,} rows in: "
                       "every row must land on exactly one side")
    if not bad:
        return False, "nothing was quarantined, but the frame has bad rows"
    if len(a["reasons"]) != len(bad) or not all(r.strip() for r in a["reasons"]):
        return False, "every quarantined row needs a non-empty 'reason' column saying what is wrong"
    if not a["values_kept"]:
        return False, "the quarantined rows must keep their original values (someone will repair them)"
    return True, (f"{len(good):,} rows to score, {len(bad)} quarantined with reasons, none lost (grading checks "
                  "they are exactly the bad ones)")


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
        lo, hi = min(samples), max(samples)
        by_q = dict(zip(QS, got, strict=True))
        if not (np.isclose(by_q[0], lo) and np.isclose(by_q[100], hi)):
            return False, f"for {len(samples)} samples, p0 must be the smallest and p100 the largest sample"
        ordered = [by_q[q] for q in sorted(QS)]
        if any(b < a_ - 1e-12 for a_, b in zip(ordered, ordered[1:], strict=False)):
            return False, "a higher percentile came out smaller than a lower one: are the samples sorted?"
    two = a[3]
    if not np.isclose(two[0], 1.5):
        return False, f"p50 of [1, 2] is {two[0]:.6g}; halfway between the two ranks is 1.5: interpolate"
    return True, "p0 = min, p100 = max, increasing, interpolated (grading compares every value with numpy's)"


# ---- 4. choose ---------------------------------------------------------------------------------

SCENARIO_NAMES = (
    "card payment authorisation",
    "nightly credit-limit review of every account",
    "monthly churn scores for the marketing team",
    "product recommendations while the customer browses",
    "re-scoring ten years of transactions with a new model",
)


def collect_choice(choice: Any, ctx: Context) -> dict:
    if not isinstance(choice, dict) or all(v is None for v in choice.values()):
        raise Unanswered
    return {str(k): str(v).strip().lower().replace("-", "").replace(" ", "") for k, v in choice.items()}


def evaluate_choice(a: dict, ctx: Context) -> tuple[bool, str]:
    missing = [s for s in SCENARIO_NAMES if s not in a]
    if missing:
        return False, f"no answer for: {missing[0]!r}"
    odd = [s for s in SCENARIO_NAMES if a[s] not in ("batch", "realtime")]
    if odd:
        return False, f"{odd[0]!r}: answer 'batch' or 'realtime', not {a[odd[0]]!r}"
    return True, "a choice for every scenario (grading checks each one)"


QUESTIONS = [
    Question("chunks", 3, collect_chunks, evaluate_chunks,
             "pq.ParquetFile can give you the file a batch at a time (look at its iter_ methods): score each "
             "batch as it arrives, and never hold more than one", "Write the chunk loop"),
    Question("split", 3, collect_split, evaluate_split,
             "schema.validate(df) returns a Validation: look at its .bad_rows and .reasons (help(...)), and "
             "index the frame with a boolean mask", "Write a quarantine rule"),
    Question("percentile", 2, collect_percentile, evaluate_percentile,
             "work it on paper for [1, 2, 3, 4] and q=50 first: which two sorted values surround the "
             "position, and how far between them is it?", "Compute a latency percentile"),
    Question("choice", 1, collect_choice, evaluate_choice,
             "for each scenario, ask who is waiting for the answer, and how many rows arrive at once",
             "Batch or real-time?"),
]
