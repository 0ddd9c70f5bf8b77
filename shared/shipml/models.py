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
    reference: Any = None  # shipml.monitoring.reference.ReferenceProfile of the held-out rows


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
    from shipml.monitoring.performance import calibration_error
    from shipml.monitoring.reference import build_reference

    reference = build_reference(X_test, proba, SCHEMA, seed=seed, metrics={
        **metrics, "calibration_error": calibration_error(y_test.to_numpy(), proba)})
    return TrainResult(pipeline, kind, metrics, training_data, reference)


def library_versions() -> dict[str, str]:
    """The versions a pickled pipeline depends on; a bundle records them and loading checks them."""
    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__, "joblib": joblib.__version__}


def save_bundle(result: TrainResult, out: str | Path, name: str | None = None, version: int = 1,
                decision_threshold: float | None = None) -> Path:
    """Write the pipeline, its metadata and hashes into the folder ``out``.

    ``decision_threshold``: the fraud probability from which ``predict`` says fraud (None: 0.5, the
    most probable class); choose it for the use case with :func:`shipml.thresholds.choose_threshold`."""
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
        decision_threshold=None if decision_threshold is None else float(decision_threshold),
    )
    files = {}
    if result.reference is not None:  # what drift monitoring compares the served traffic with
        from shipml.monitoring.reference import REFERENCE_FILE

        result.reference.model, result.reference.version = metadata.name, version
        files[REFERENCE_FILE] = result.reference.to_json()
    return write_bundle(out, metadata, files)


def train_bundle(
    data: str | Path | pd.DataFrame, kind: str, out: str | Path, seed: int = 0, version: int = 1,
    name: str | None = None,
) -> Path:
    """Train ``kind`` on a data file (or frame) and save the bundle: the CLI's ``shipml train``."""
    from shipml.data import read_table

    df = read_table(data) if not isinstance(data, pd.DataFrame) else data
    return save_bundle(train(df, kind, seed=seed), out, name=name, version=version)


class SklearnPredictor(Predictor):
    """A bundle whose model is a pickled scikit-learn pipeline.

    For the kit's own pipeline shape (a ColumnTransformer of StandardScaler and OneHotEncoder, then a
    classifier) :meth:`predict_proba` builds the classifier's input matrix directly with numpy — the same
    arithmetic as ``transform``, without scikit-learn's per-call checks, DataFrame assembly and per-value
    category lookups, which cost five to ten times the classifier itself on a linear model. The shortcut
    is taken only after it has reproduced the pipeline's probabilities on probe rows at load, and only for
    data it can encode exactly (numbers, known categories); anything else goes through the pipeline.
    """

    backend = "sklearn"

    def __init__(self, path: Path, metadata: BundleMetadata, pipeline: Pipeline) -> None:
        super().__init__(path, metadata)
        self.pipeline = pipeline
        self._plan = self._direct_plan()
        # Trees read a row's features together: they are a few % faster on row-major input, which costs
        # one copy; a linear model takes the column-major matrix as it is.
        self._row_major = not hasattr(self.pipeline[-1], "coef_") if self._plan is not None else False

    @classmethod
    def load(cls, path: str | Path, *, trusted_keys: Any = None) -> Self:
        metadata = verify_bundle(path, trusted_keys=trusted_keys)  # signature and hashes first: unpickling runs code
        require_versions(path, metadata, library_versions())
        return cls(Path(path), metadata, joblib.load(Path(path) / metadata.model_file))

    def predict_proba(self, data: Any) -> np.ndarray:
        if self._plan is not None:
            matrix = self._matrix(data, self._plan)
            if matrix is not None:
                return self.pipeline[-1].predict_proba(np.ascontiguousarray(matrix) if self._row_major else matrix)
        return self.pipeline.predict_proba(self._frame(data))

    def _frame(self, data: Any) -> pd.DataFrame:
        names = self.schema.names
        if isinstance(data, pd.DataFrame):
            return data[names]
        return pd.DataFrame({n: data[n] for n in names}, columns=names)

    # ---- the direct path: the pipeline's preprocessing as plain numpy ----------------------------------

    def _direct_plan(self) -> tuple[int, list[tuple]] | None:
        """(width, blocks) of the classifier's input if the pipeline has the kit's shape and the plan is exact."""
        steps = getattr(self.pipeline, "steps", None)
        if not steps or len(steps) != 2 or type(steps[0][1]) is not ColumnTransformer:
            return None
        pre, clf = steps[0][1], steps[1][1]
        if getattr(pre, "sparse_output_", True) or hasattr(clf, "feature_names_in_"):
            return None
        blocks: list[tuple] = []
        width = 0
        for _, transformer, columns in pre.transformers_:
            if isinstance(transformer, str) and transformer == "drop":
                continue
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                return None
            if type(transformer) is StandardScaler:
                mean = transformer.mean_ if transformer.with_mean else None
                scale = transformer.scale_ if transformer.with_std else None
                blocks.append(("scaled", width, columns, mean, scale))
                width += len(columns)
            elif (type(transformer) is OneHotEncoder and transformer.handle_unknown == "ignore"
                  and transformer.drop_idx_ is None and not transformer.sparse_output
                  and not transformer._infrequent_enabled and len(columns) == len(transformer.categories_)):
                for column, categories in zip(columns, transformer.categories_, strict=True):
                    blocks.append(("onehot", width, column, pd.Index(categories, dtype=object)))
                    width += len(categories)
            else:
                return None
        plan = (width, blocks)
        try:  # trust the plan only if it reproduces the pipeline on probe rows
            probe = self._probe_rows()
            direct = self._matrix(probe, plan)
            if direct is None or direct.shape[1] != getattr(clf, "n_features_in_", direct.shape[1]):
                return None
            expected = self.pipeline.predict_proba(probe)
            if not np.allclose(clf.predict_proba(direct), expected, rtol=1e-12, atol=1e-15):
                return None
        except Exception:  # any doubt: always use the pipeline
            return None
        return plan

    def _probe_rows(self, n: int = 48) -> pd.DataFrame:
        """Valid rows spanning each feature's range and every category."""
        columns: dict[str, Any] = {}
        for i, feat in enumerate(self.schema.features):
            if feat.dtype == "category":
                cats = list(feat.categories or ("a",))
                columns[feat.name] = [cats[(j + i) % len(cats)] for j in range(n)]
                continue
            low = feat.min if feat.min is not None else -100.0
            high = feat.max if feat.max is not None else 100.0
            values = np.linspace(low, high, n)[np.random.default_rng(i).permutation(n)]
            if feat.dtype == "bool":
                values = (np.arange(n) + i) % 2 == 0
            elif feat.dtype == "int":
                values = np.round(values).astype(np.int64)
            columns[feat.name] = values
        return pd.DataFrame(columns)

    @staticmethod
    def _matrix(data: Any, plan: tuple[int, list[tuple]]) -> np.ndarray | None:
        """The classifier's input, or None if ``data`` holds anything the pipeline must judge itself.

        Column-major, so every column is written in one contiguous pass (the classifiers take either
        layout; a linear model's sums may differ from the pipeline's in the last bit, nothing more).
        """
        width, blocks = plan
        matrix: np.ndarray | None = None

        def allocate(n: int) -> np.ndarray:
            return np.empty((width, n), dtype=np.float64).T

        for block in blocks:
            if block[0] == "scaled":
                _, first, columns, mean, scale = block
                for j, name in enumerate(columns):
                    try:
                        values = np.asarray(data[name], dtype=np.float64)
                    except (TypeError, ValueError):  # text where a number belongs
                        return None
                    matrix = allocate(len(values)) if matrix is None else matrix
                    column = matrix[:, first + j]  # StandardScaler.transform's arithmetic, in place
                    if mean is not None:
                        np.subtract(values, mean[j], out=column)
                    else:
                        column[:] = values
                    if scale is not None:
                        np.divide(column, scale[j], out=column)
            else:
                _, first, name, categories = block
                codes = SklearnPredictor._category_codes(data[name], categories)
                if codes is None:
                    return None
                matrix = allocate(len(codes)) if matrix is None else matrix
                for k in range(len(categories)):
                    np.equal(codes, k, out=matrix[:, first + k], casting="unsafe")
        return matrix

    @staticmethod
    def _category_codes(values: Any, categories: pd.Index) -> np.ndarray | None:
        """Each value's position in ``categories``; None if any value is missing or unknown."""
        if isinstance(values, pd.Series):
            values = values.array
        # Look up the few distinct values, not every row (missing values have code -1, read as unknown).
        if isinstance(values, pd.Categorical):
            codes, distinct = values.codes, values.categories
        else:
            codes, distinct = pd.factorize(np.asarray(values, dtype=object))
        codes = np.append(categories.get_indexer(np.asarray(distinct, dtype=object)), -1)[codes]
        return None if len(codes) and codes.min() < 0 else codes
