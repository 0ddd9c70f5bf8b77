"""Deliberately bad model versions, real bundles of real scikit-learn estimators, to rehearse a rollback.

* :func:`constant_bundle` — a ``DummyClassifier`` that answers the training fraud rate for every
  payment: it never fails, its latency is fine, only its *scores* are wrong (what the canary's score
  check must catch);
* :func:`failing_bundle` — the kit's logistic regression behind a guard step that raises for payments
  above ``amount_above``: a good model that crashes on some inputs (what the error check must catch);
* :func:`slow_bundle` — the same model, ``delay_ms`` slower on every call (what the latency check, and
  shadow mode's bound on background work, must handle).

The guards are :func:`refuse_large_amounts` and :func:`pause`, functions of this module wrapped in a
``FunctionTransformer``; the pickle names them by import path, so a server that can import ``shipml``
loads the bundle. All pass the server's load-time proof (the schema's example payment is small), as a
real bad release would.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from shipml.data import SCHEMA, fingerprint
from shipml.models import TrainResult, build_pipeline, save_bundle


def refuse_large_amounts(X: Any, limit: float) -> Any:
    """Pass ``X`` through unchanged, or raise for any payment above ``limit`` (the deliberate fault)."""
    amounts = np.asarray(X["amount"], dtype=np.float64)
    if amounts.size and float(amounts.max()) > limit:
        raise ValueError(f"this model version cannot score payments above {limit:g}")
    return X


def pause(X: Any, seconds: float) -> Any:
    """Pass ``X`` through unchanged after ``seconds`` (the deliberate slowness)."""
    time.sleep(seconds)
    return X


def _fit(df: pd.DataFrame, pipeline: Pipeline, kind: str, seed: int,
         guard: FunctionTransformer | None = None) -> TrainResult:
    """Fit like :func:`shipml.models.train` (same split); the guard goes in front afterwards (it would
    refuse part of the training rows), and the metrics are the model's behind it."""
    X, y = df[SCHEMA.names], df[SCHEMA.target].astype(int)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed)
    pipeline.fit(X_train, y_train)
    proba = pipeline.predict_proba(X_test)[:, 1]
    if guard is not None:
        pipeline = Pipeline([("guard", guard.fit(X_train.head(0))), ("model", pipeline)])
    metrics = {"roc_auc": float(roc_auc_score(y_test, proba)),
               "average_precision": float(average_precision_score(y_test, proba)),
               "fraud_rate": float(y_test.mean())}
    training = {"rows": len(df), "train_rows": len(X_train), "test_rows": len(X_test),
                "fingerprint": fingerprint(df), "seed": seed}
    return TrainResult(pipeline, kind, metrics, training)


def constant_bundle(df: pd.DataFrame, out: str | Path, name: str = "fraud", version: int = 2,
                    seed: int = 0) -> Path:
    """A bundle whose every score is the training fraud rate (``DummyClassifier(strategy="prior")``)."""
    pipeline = build_pipeline("lr", seed=seed)
    pipeline.set_params(classifier=DummyClassifier(strategy="prior"))
    return save_bundle(_fit(df, pipeline, "constant", seed), out, name=name, version=version)


def failing_bundle(df: pd.DataFrame, out: str | Path, name: str = "fraud", version: int = 2,
                   amount_above: float = 500.0, seed: int = 0) -> Path:
    """The kit's logistic regression that raises for any payment above ``amount_above``."""
    guard = FunctionTransformer(refuse_large_amounts, kw_args={"limit": float(amount_above)})
    result = _fit(df, build_pipeline("lr", seed=seed), "lr-failing", seed, guard=guard)
    return save_bundle(result, out, name=name, version=version)


def slow_bundle(df: pd.DataFrame, out: str | Path, name: str = "fraud", version: int = 2,
                delay_ms: float = 50.0, seed: int = 0) -> Path:
    """The kit's logistic regression, ``delay_ms`` slower on every call."""
    guard = FunctionTransformer(pause, kw_args={"seconds": float(delay_ms) / 1000.0})
    result = _fit(df, build_pipeline("lr", seed=seed), "lr-slow", seed, guard=guard)
    return save_bundle(result, out, name=name, version=version)
