"""Lab 00 — your first model bundle: make data, train, predict, and see a tampered bundle refused."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from shipml.checks import Context, Question

ROWS = 20_000


@lru_cache(maxsize=4)
def _reference(seed: int):
    from shipml.data import fingerprint, make_transactions
    from shipml.models import train

    df = make_transactions(ROWS, seed=seed)
    result = train(df, "hgb", seed=seed)
    return fingerprint(df), result.pipeline.predict_proba(df.head(5))[:, 1]


def collect_data(df: Any, ctx: Context) -> dict:
    from shipml.data import fingerprint

    return {"rows": len(df), "columns": [str(c) for c in df.columns], "fingerprint": fingerprint(df)}


def evaluate_data(a: dict, ctx: Context) -> tuple[bool, str]:
    if a["rows"] != ROWS:
        return False, f"the frame has {a['rows']:,} rows; the exercise asks for {ROWS:,}"
    if a["fingerprint"] != _reference(ctx.seed)[0]:
        return False, "the rows differ from make_transactions(20_000, seed=seed): did you pass the lab's seed?"
    return True, f"{ROWS:,} transactions, exactly the seeded ones"


def collect_bundle(path: Any, ctx: Context) -> dict:
    from shipml.bundle import verify_bundle

    m = verify_bundle(Path(path))
    return {"kind": m.model_kind, "backend": m.backend, "roc_auc": m.metrics.get("roc_auc", 0.0),
            "fingerprint": m.training_data.get("fingerprint", ""), "version": m.version}


def evaluate_bundle(a: dict, ctx: Context) -> tuple[bool, str]:
    if a["kind"] != "hgb":
        return False, f"the bundle holds a '{a['kind']}' model; the exercise asks for 'hgb'"
    if a["fingerprint"] != _reference(ctx.seed)[0]:
        return False, "the bundle was trained on other data than the frame from question 1"
    if not a["roc_auc"] >= 0.8:
        return False, f"held-out ROC AUC is {a['roc_auc']:.3f}; a correct hgb model reaches 0.8 or more"
    return True, f"a verified hgb bundle, held-out ROC AUC {a['roc_auc']:.3f}"


def collect_proba(proba: Any, ctx: Context) -> np.ndarray:
    return np.asarray(proba, dtype=np.float64)


def evaluate_proba(p: np.ndarray, ctx: Context) -> tuple[bool, str]:
    if p.shape != (5,):
        return False, f"expected 5 fraud probabilities (shape (5,)), got shape {p.shape}: take column 1"
    if not np.all((p >= 0) & (p <= 1)):
        return False, "probabilities must lie between 0 and 1: did you call predict instead of predict_proba?"
    if not np.allclose(p, _reference(ctx.seed)[1], atol=1e-6):
        return False, "these are not the fraud probabilities of your bundle for the first 5 rows"
    return True, "the fraud probabilities of the first 5 transactions"


def collect_refusal(message: Any, ctx: Context) -> str:
    return str(message)


def evaluate_refusal(message: str, ctx: Context) -> tuple[bool, str]:
    if "sha256" not in message:
        return False, f"that message ({message[:80]!r}) is not the bundle loader refusing a changed file"
    return True, "the tampered bundle was refused before anything was unpickled"


QUESTIONS = [
    Question("data", 1, collect_data, evaluate_data,
             "call make_transactions(20_000, seed=seed)", "Generate the data"),
    Question("bundle", 2, collect_bundle, evaluate_bundle,
             "train_bundle(df, 'hgb', workdir / 'fraud-hgb', seed=seed) returns the bundle folder",
             "Train and save an hgb bundle"),
    Question("proba", 1, collect_proba, evaluate_proba,
             "load_predictor(bundle_dir).predict_proba(df.head(5))[:, 1]", "Predict"),
    Question("refusal", 1, collect_refusal, evaluate_refusal,
             "copy the bundle, change one byte of model.joblib, call load_predictor on the copy inside "
             "try/except BundleError and keep str(error)", "See a tampered bundle refused"),
]
