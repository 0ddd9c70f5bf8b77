"""Train scikit-learn pipelines on the transactions data and save them as verified bundles.

Why ``import joblib`` and not ``from sklearn.externals import joblib`` (the lecture's line):
scikit-learn vendored joblib under ``sklearn.externals`` until 0.21 and removed it in 0.23, so that
import fails on every scikit-learn of the last years. joblib is its own package; import it directly.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, average_precision_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shipml.bundle import BundleMetadata, require_versions, verify_bundle, write_bundle
from shipml.data import CLASS_NAMES, SCHEMA, fingerprint
from shipml.errors import ShipmlError
from shipml.predictor import Predictor
from shipml.schema import FeatureSchema

MODEL_FILE = "model.joblib"
MODEL_KINDS = {
    "lr": "logistic regression: a weighted sum of the features, fast and explainable",
    "hgb": "histogram gradient boosting: trees that learn thresholds and interactions",
    "mlp": "a small neural network (multi-layer perceptron), used in the edge lesson",
}


def build_pipeline(kind: str, schema: FeatureSchema = SCHEMA, seed: int = 0) -> Pipeline:
    """Scaling for numbers, one-hot encoding for categories, then the classifier ``kind``."""
    numeric = [f.name for f in schema.features if f.dtype != "category"]
    categorical = [f for f in schema.features if f.dtype == "category"]
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            (
                "categorical",
                OneHotEncoder(
                    categories=[list(f.categories or ()) for f in categorical],
                    handle_unknown="ignore",
                    sparse_output=False,
                ),
                [f.name for f in categorical],
            ),
        ]
    )
    if kind == "lr":
        clf: Any = LogisticRegression(max_iter=1000)
    elif kind == "hgb":
        clf = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, random_state=seed)
    elif kind == "mlp":
        # A fixed 30 epochs: early stopping watches accuracy, which a 98 %-legit dataset never moves.
        clf = MLPClassifier(hidden_layer_sizes=(64, 32), alpha=1e-3, max_iter=30, random_state=seed)
    else:
        raise ShipmlError(f"unknown model '{kind}'; choose one of: {', '.join(MODEL_KINDS)}")
    return Pipeline([("preprocess", preprocess), ("classifier", clf)])


@dataclass
class TrainResult:
    pipeline: Pipeline
    kind: str
    metrics: dict[str, float]
    training_data: dict[str, Any]


def train(df: pd.DataFrame, kind: str = "lr", seed: int = 0, test_size: float = 0.2) -> TrainResult:
    """Fit on a stratified split of ``df`` and measure on the held-out part."""
    validation = SCHEMA.validate(df)
    if validation.missing:
        raise ShipmlError(f"training data lacks column(s): {', '.join(validation.missing)}")
    if SCHEMA.target not in df.columns:
        raise ShipmlError(f"training data lacks the target column '{SCHEMA.target}'")
    if validation.n_bad:
        raise ShipmlError(f"training data has {validation.n_bad} invalid rows: {validation.problems(3)[0]}")
    if df[SCHEMA.target].nunique() < 2:
        raise ShipmlError("training data holds only one class; generate more rows")
    X, y = df[SCHEMA.names], df[SCHEMA.target].astype(int)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=seed
    )
    pipeline = build_pipeline(kind, seed=seed)
    started = time.perf_counter()
    with warnings.catch_warnings():  # the mlp stops after its fixed epochs on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - started
    proba = pipeline.predict_proba(X_test)[:, 1]
    metrics = {
        "roc_auc": float(roc_auc_score(y_test, proba)),
        "average_precision": float(average_precision_score(y_test, proba)),
        "log_loss": float(log_loss(y_test, proba)),
        "accuracy": float(accuracy_score(y_test, proba >= 0.5)),
        "fraud_rate": float(y_test.mean()),
        "fit_seconds": round(fit_seconds, 3),
    }
    training_data = {
        "rows": len(df),
        "train_rows": len(X_train),
        "test_rows": len(X_test),
        "fingerprint": fingerprint(df),
        "seed": seed,
    }
    return TrainResult(pipeline, kind, metrics, training_data)


def library_versions() -> dict[str, str]:
    """The versions a pickled pipeline depends on; a bundle records them and loading checks them."""
    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "joblib": joblib.__version__}


def save_bundle(result: TrainResult, out: str | Path, name: str | None = None, version: int = 1) -> Path:
    """Write the pipeline, its metadata and hashes into the folder ``out``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ShipmlError(f"{out}: folder exists and is not empty; choose a new folder for the bundle")
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(result.pipeline, out / MODEL_FILE)
    metadata = BundleMetadata(
        name=name or f"fraud-{result.kind}",
        version=version,
        backend="sklearn",
        model_file=MODEL_FILE,
        model_kind=result.kind,
        schema=SCHEMA,
        class_labels=[0, 1],
        class_names=list(CLASS_NAMES),
        metrics=result.metrics,
        training_data=result.training_data,
        libraries=library_versions(),
    )
    return write_bundle(out, metadata)


def train_bundle(
    data: str | Path | pd.DataFrame, kind: str, out: str | Path, seed: int = 0, version: int = 1,
    name: str | None = None,
) -> Path:
    """Train ``kind`` on a data file (or frame) and save the bundle: the CLI's ``shipml train``."""
    from shipml.data import read_table

    df = read_table(data) if not isinstance(data, pd.DataFrame) else data
    return save_bundle(train(df, kind, seed=seed), out, name=name, version=version)


class SklearnPredictor(Predictor):
    """A bundle whose model is a pickled scikit-learn pipeline."""

    backend = "sklearn"

    def __init__(self, path: Path, metadata: BundleMetadata, pipeline: Pipeline) -> None:
        super().__init__(path, metadata)
        self.pipeline = pipeline

    @classmethod
    def load(cls, path: str | Path) -> Self:
        metadata = verify_bundle(path)  # hashes first: unpickling runs code
        require_versions(path, metadata, library_versions())
        return cls(Path(path), metadata, joblib.load(Path(path) / metadata.model_file))

    def predict_proba(self, data: Any) -> np.ndarray:
        return self.pipeline.predict_proba(self._frame(data))

    def _frame(self, data: Any) -> pd.DataFrame:
        names = self.schema.names
        if isinstance(data, pd.DataFrame):
            return data[names]
        return pd.DataFrame({n: data[n] for n in names}, columns=names)
