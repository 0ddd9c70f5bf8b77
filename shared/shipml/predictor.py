"""One predictor interface for every way the kit serves a model (MLServer's runtime shape).

The batch engine, the API server and the edge runtime all hold a :class:`Predictor`: ``load`` a
bundle, then ``predict`` / ``predict_proba`` on columnar data whose ``schema`` the predictor
publishes. Which class loads a bundle is written in the bundle (``metadata.backend``), and classes
are imported only when needed, so the edge runtime never imports scikit-learn or pandas.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from shipml.bundle import METADATA_FILE, BundleMetadata
from shipml.errors import BundleError
from shipml.schema import FeatureSchema, Validation

BACKENDS: dict[str, str] = {
    "sklearn": "shipml.models:SklearnPredictor",
    "onnx": "shipml.edge.runtime:OnnxPredictor",
}


class Predictor(ABC):
    """A loaded model: validated input in, class probabilities and labels out."""

    backend: ClassVar[str]

    def __init__(self, path: Path | None, metadata: BundleMetadata) -> None:
        self.path = Path(path) if path is not None else None  # None: built in memory, not from a folder
        self.metadata = metadata

    @classmethod
    @abstractmethod
    def load(cls, path: str | Path, *, trusted_keys: Any = None) -> Self:
        """Verify the bundle at ``path`` (signature too, see :func:`shipml.bundle.verify_bundle`), load it."""

    @abstractmethod
    def predict_proba(self, data: Any) -> np.ndarray:
        """Probabilities, shape (rows, classes), for *valid* columnar data (see :meth:`validate`)."""

    def predict_proba_one(self, row: Mapping[str, Any]) -> np.ndarray:
        """Probabilities of one valid row given as ``{feature: value}``, shape (classes,).

        A one-row batch here; a backend with a leaner one-row path (ONNX) overrides it.
        """
        return self.predict_proba({n: [row[n]] for n in self.schema.names})[0]

    def predict(self, data: Any) -> np.ndarray:
        """Class labels: the positive class where its probability reaches the bundle's
        ``decision_threshold``, else the most probable class of each row."""
        return np.asarray(self.metadata.class_labels)[self.decide(self.predict_proba(data))]

    def decide(self, proba: np.ndarray) -> np.ndarray:
        """Index of the predicted class of each row of ``proba`` (rows x classes), by this bundle's rule."""
        return decide(proba, self.metadata.decision_threshold)

    def decide_one(self, proba: np.ndarray) -> int:
        """:meth:`decide` for one row's probabilities (shape (classes,)): the REST server's one-row path."""
        return decide_one(proba, self.metadata.decision_threshold)

    def validate(self, data: Any, *, allow_extra: bool = True) -> Validation:
        """Check data against this model's schema; every bad field is reported."""
        return self.schema.validate(data, allow_extra=allow_extra)

    @property
    def schema(self) -> FeatureSchema:
        return self.metadata.schema

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> int:
        return self.metadata.version

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} v{self.version} from {self.path or 'memory'}>"


def decide(proba: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Class index per row: with two classes and a ``threshold``, 1 where ``proba[:, 1] >= threshold``;
    otherwise the most probable class (ties go to the first). The one rule batch, API and edge share."""
    proba = np.asarray(proba)
    if proba.ndim == 2 and proba.shape[1] == 2:  # without numpy's slow row-wise argmax
        positive = proba[:, 1] >= threshold if threshold is not None else proba[:, 1] > proba[:, 0]
        return positive.astype(np.intp)
    return proba.argmax(axis=1)


def decide_one(proba: np.ndarray, threshold: float | None = None) -> int:
    """:func:`decide` for one row (shape (classes,)): the same comparisons on numpy scalars, so a float32
    row meets the threshold exactly as in a batch, without building a (1, classes) array."""
    if len(proba) == 2:
        return int(proba[1] >= threshold) if threshold is not None else int(proba[1] > proba[0])
    return int(proba.argmax())


def load_predictor(path: str | Path, *, trusted_keys: Any = None) -> Predictor:
    """Load any kit bundle with the predictor class its metadata names.

    ``trusted_keys`` (a folder of ``*.pub`` keys; default ``SHIPML_TRUSTED_KEYS``) makes a valid
    signature by one of them a condition of loading: see :mod:`shipml.signing`.
    """
    backend = peek_backend(path)
    target = BACKENDS.get(backend)
    if target is None:
        raise BundleError(f"{path}: unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    module, _, cls_name = target.partition(":")
    cls: type[Predictor] = getattr(importlib.import_module(module), cls_name)
    return cls.load(path, trusted_keys=trusted_keys)


def peek_backend(path: str | Path) -> str:
    """The backend a bundle names, read without loading anything (the loader verifies hashes)."""
    try:
        return str(json.loads((Path(path) / METADATA_FILE).read_text())["backend"])
    except FileNotFoundError:
        raise BundleError(f"{path}: not a model bundle ({METADATA_FILE} is missing)") from None
    except (ValueError, KeyError, TypeError):
        raise BundleError(f"{path}: {METADATA_FILE} is not valid bundle metadata") from None
