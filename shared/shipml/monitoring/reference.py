"""The reference profile: what drift detection needs to know about the data a model was trained on.

Written into every bundle at training time as ``reference.json`` (hashed like the other files), computed
on the held-out rows (the model did not fit them, so their scores are what the model really does).

Per numeric feature (``float``, ``int``) and for the score (the probability of the positive class):

* **bin edges** at the reference deciles (``bins=10``; repeated edges of integer features merged), and the
  reference **count** per bin. A value ``x`` falls in bin ``searchsorted(edges, x, side="right")``: bin 0 is
  ``x < edges[0]``, the last bin is ``x >= edges[-1]``; values outside the reference range land in the
  outer bins, so no value is ever lost. Equal-frequency bins make every bin matter for PSI.
* a seeded **sample** of ``sample_rows`` values for the two-sample Kolmogorov-Smirnov test.

Per category and boolean feature: the **count** of every category (plus ``(other)`` for values never seen).
Plus the held-out metrics and the serving threshold, so performance monitoring knows where it started.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipml.errors import ShipmlError
from shipml.schema import FeatureSchema

REFERENCE_FILE = "reference.json"
SCORE = "score"  # the name the score's profile has (the probability of the positive class)
OTHER = "(other)"
FORMAT = 1


@dataclass
class FeatureProfile:
    """One feature's (or the score's) reference distribution."""

    name: str
    kind: str  # "numeric" or "category"
    counts: list[int]
    edges: list[float] = field(default_factory=list)  # numeric: interior bin edges
    categories: list[str] = field(default_factory=list)  # category: names, in order of ``counts``
    sample: list[float] = field(default_factory=list)  # numeric: values for the KS test

    @property
    def n(self) -> int:
        return int(sum(self.counts))

    def bin_counts(self, values: Any) -> np.ndarray:
        """Counts of ``values`` in this profile's bins (numbers) or categories (``(other)`` for the unseen)."""
        if self.kind == "numeric":
            x = np.asarray(values, dtype=np.float64)
            x = x[~np.isnan(x)]
            idx = np.searchsorted(np.asarray(self.edges), x, side="right")
            return np.bincount(idx, minlength=len(self.edges) + 1)
        import pandas as pd

        arr = values.array if isinstance(values, pd.Series) else values
        if not isinstance(arr, pd.Categorical) and np.asarray(arr).dtype == bool:
            arr = category_text(arr)
        codes, uniques = pd.factorize(arr, use_na_sentinel=False)  # hashing the few distinct values, not sorting
        lookup = {c: i for i, c in enumerate(self.categories)}
        other = lookup.get(OTHER, len(self.categories) - 1)
        names = [str(u) for u in np.asarray(uniques, dtype=object).tolist()]
        mapping = np.array([lookup.get(u, other) for u in names], dtype=np.int64)
        if len(codes) == 0:
            return np.zeros(len(self.categories), dtype=np.int64)
        return np.bincount(mapping[codes], minlength=len(self.categories))


def category_text(values: Any) -> np.ndarray:
    """Category or boolean values as text (``True``/``False`` for booleans), the way profiles name them."""
    arr = np.asarray(values)
    if arr.dtype == bool:
        return np.where(arr, "True", "False")
    return np.asarray([str(v) for v in arr.tolist()], dtype=object) if arr.dtype.kind not in "U" else arr


@dataclass
class ReferenceProfile:
    """Every feature's profile, the score's, the held-out metrics and the threshold the server uses."""

    features: dict[str, FeatureProfile]
    score: FeatureProfile
    rows: int
    metrics: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.5
    model: str = ""
    version: int = 0
    format: int = FORMAT

    def profiles(self) -> dict[str, FeatureProfile]:
        """Features then the score, the order reports and tests use."""
        return {**self.features, SCORE: self.score}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return d

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReferenceProfile:
        if d.get("format") != FORMAT:
            raise ShipmlError(f"reference profile format {d.get('format')!r} is not {FORMAT}; retrain the bundle")
        return cls(
            features={k: FeatureProfile(**v) for k, v in d["features"].items()},
            score=FeatureProfile(**d["score"]), rows=int(d["rows"]), metrics=dict(d.get("metrics", {})),
            threshold=float(d.get("threshold", 0.5)), model=d.get("model", ""), version=int(d.get("version", 0)),
        )


def numeric_profile(name: str, values: Any, bins: int = 10, sample_rows: int = 2000, seed: int = 0) -> FeatureProfile:
    """Decile edges, counts and a seeded sample of one numeric column."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        raise ShipmlError(f"reference for '{name}': no values")
    qs = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1])
    edges = np.unique(qs)
    edges = edges[edges > x.min()]  # an edge at the minimum would leave bin 0 empty
    profile = FeatureProfile(name, "numeric", [], edges=[float(e) for e in edges])
    profile.counts = [int(c) for c in profile.bin_counts(x)]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x), size=min(sample_rows, len(x)), replace=False)
    profile.sample = [float(v) for v in np.sort(x[pick])]
    return profile


def category_profile(name: str, values: Any, categories: list[str] | None = None) -> FeatureProfile:
    """Counts of every category (the schema's, else those seen) plus ``(other)``."""
    text = category_text(values)
    names = list(categories) if categories else sorted(set(text.tolist()))
    profile = FeatureProfile(name, "category", [], categories=[*names, OTHER])
    profile.counts = [int(c) for c in profile.bin_counts(text)]
    return profile


def build_reference(data: Any, scores: Any, schema: FeatureSchema, *, metrics: dict[str, float] | None = None,
                    threshold: float = 0.5, bins: int = 10, sample_rows: int = 2000, seed: int = 0,
                    model: str = "", version: int = 0) -> ReferenceProfile:
    """The profile of ``data`` (columns of the schema's features) and ``scores`` (positive-class probabilities)."""
    features: dict[str, FeatureProfile] = {}
    for i, feat in enumerate(schema.features):
        column = np.asarray(data[feat.name])
        if feat.dtype == "category":
            features[feat.name] = category_profile(feat.name, column, list(feat.categories or ()) or None)
        elif feat.dtype == "bool":
            features[feat.name] = category_profile(feat.name, column.astype(bool), ["False", "True"])
        else:
            features[feat.name] = numeric_profile(feat.name, column, bins, sample_rows, seed + i)
    score = numeric_profile(SCORE, scores, bins, sample_rows, seed + 1000)
    return ReferenceProfile(features, score, len(np.asarray(scores)), dict(metrics or {}), float(threshold),
                            model, int(version))


def load_reference(bundle: str | Path) -> ReferenceProfile:
    """The bundle's reference profile (hashes checked first), or a clear error for bundles without one."""
    from shipml.bundle import verify_bundle

    bundle = Path(bundle)
    verify_bundle(bundle)
    path = bundle / REFERENCE_FILE
    if not path.is_file():
        raise ShipmlError(f"{bundle}: no reference in this bundle ({REFERENCE_FILE} is missing; it was made "
                          "before shipml wrote one): retrain it with `shipml train` to monitor drift")
    try:
        return ReferenceProfile.from_dict(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise ShipmlError(f"{path}: not a valid reference profile ({exc})") from None
