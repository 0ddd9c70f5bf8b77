"""Feature schemas: what a model expects, and a validator that reports every bad field.

Only numpy is needed here (no pandas, no scikit-learn), so the edge runtime can validate inputs on a
small device. Input is *columnar*: anything where ``data[name]`` gives a 1-D sequence — a dict of
lists or arrays, a pandas DataFrame, a pyarrow Table converted with ``to_pydict``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from shipml.errors import SchemaError

DType = Literal["float", "int", "bool", "category"]
NUMERIC: frozenset[str] = frozenset({"float", "int", "bool"})


@dataclass(frozen=True)
class Feature:
    """One input column: its type, the range a valid value lies in, and what it means."""

    name: str
    dtype: DType
    description: str = ""
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v is not None}
        if self.categories is not None:
            d["categories"] = list(self.categories)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Feature:
        d = dict(d)
        if d.get("categories") is not None:
            d["categories"] = tuple(d["categories"])
        return cls(**d)


@dataclass
class Validation:
    """The outcome of checking columnar data against a schema.

    ``columns`` holds the converted arrays (float64 for numeric features, str objects for
    categories); rows flagged in ``bad_rows`` hold placeholders there and must not be scored.
    """

    n_rows: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    bad_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    reasons: list[str] = field(default_factory=list)  # one per bad row, in row order
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra and not self.bad_rows.any()

    @property
    def n_bad(self) -> int:
        return int(self.bad_rows.sum())

    def problems(self, max_rows: int = 5) -> list[str]:
        """Every problem, one line each: missing and extra columns, then the first bad rows."""
        out = [f"missing column '{c}'" for c in self.missing]
        out += [f"unexpected column '{c}'" for c in self.extra]
        bad_idx = np.flatnonzero(self.bad_rows)
        for i, reason in zip(bad_idx[:max_rows], self.reasons[:max_rows], strict=False):
            out.append(f"row {int(i)}: {reason}")
        if len(bad_idx) > max_rows:
            out.append(f"... and {len(bad_idx) - max_rows} more bad rows")
        return out

    def raise_if_invalid(self) -> None:
        if not self.ok:
            raise SchemaError("; ".join(self.problems()))


@dataclass(frozen=True)
class FeatureSchema:
    """The ordered features a model takes, plus the names of the id and target columns."""

    features: tuple[Feature, ...]
    id_column: str = "id"
    target: str | None = None

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id_column": self.id_column,
            "target": self.target,
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSchema:
        return cls(
            features=tuple(Feature.from_dict(f) for f in d["features"]),
            id_column=d.get("id_column", "id"),
            target=d.get("target"),
        )

    def validate(self, data: Any, *, allow_extra: bool = True) -> Validation:
        """Check columnar ``data``; never raises for bad values, reports them all instead.

        Extra columns are reported in ``extra`` only when ``allow_extra`` is False (an API
        request with an unknown field is a mistake; a batch file with extra columns is normal).
        """
        present = list(_column_names(data))
        missing = [n for n in self.names if n not in present]
        known = set(self.names) | {self.id_column} | ({self.target} if self.target else set())
        extra = [] if allow_extra else [c for c in present if c not in known]
        lengths = {len(data[n]) for n in self.names if n in present}
        if len(lengths) > 1:
            raise SchemaError(f"columns have different lengths: {sorted(lengths)}")
        n_rows = lengths.pop() if lengths else 0
        result = Validation(n_rows=n_rows, missing=missing, extra=extra)
        result.bad_rows = np.zeros(n_rows, dtype=bool)
        if missing:
            return result
        row_reasons: dict[int, list[str]] = {}
        for feat in self.features:
            values, problems = _check_column(feat, data[feat.name])
            result.columns[feat.name] = values
            for mask, describe in problems:
                result.bad_rows |= mask
                for i in np.flatnonzero(mask):
                    row_reasons.setdefault(int(i), []).append(describe(int(i)))
        result.reasons = ["; ".join(row_reasons[i]) for i in sorted(row_reasons)]
        return result


def _column_names(data: Any) -> list[str]:
    if hasattr(data, "columns"):  # pandas DataFrame
        return [str(c) for c in data.columns]
    if isinstance(data, Mapping):
        return [str(k) for k in data]
    raise SchemaError(f"expected columnar data (a mapping of column name to values), got {type(data).__name__}")


def _to_array(values: Any) -> np.ndarray:
    if hasattr(values, "to_numpy"):  # pandas Series / pyarrow ChunkedArray
        try:
            return values.to_numpy(zero_copy_only=False)
        except TypeError:
            return values.to_numpy()
    try:
        raw = np.asarray(values)
    except ValueError:  # ragged: some values are lists (a JSON client's mistake)
        raw = None
    if raw is None or raw.ndim > 1:  # one object per row; the checks below refuse the lists
        raw = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            raw[i] = v
    return raw


def _as_float(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert to float64; return (values, mask of entries that are not numbers at all)."""
    if raw.dtype.kind in "biuf":
        return raw.astype(np.float64, copy=False), np.zeros(len(raw), dtype=bool)
    out = np.empty(len(raw), dtype=np.float64)
    not_number = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw):
        if isinstance(v, bool | np.bool_ | int | float | np.integer | np.floating):
            try:
                out[i] = float(v)
            except OverflowError:  # an integer beyond float range (JSON allows 1 and 309 zeros)
                out[i] = math.inf if v > 0 else -math.inf
        elif v is None:
            out[i] = math.nan
        else:
            out[i], not_number[i] = math.nan, True
    return out, not_number


def _dictionary_parts(values: Any) -> tuple[np.ndarray, np.ndarray, Any] | None:
    """(distinct values, codes with -1 for missing, the missing value) of a dictionary-encoded column.

    A pyarrow ``DictionaryArray`` or a pandas ``Categorical`` column holds each distinct value once, so
    a category check can look at a handful of values instead of every row (the batch engine's fast path).
    """
    if hasattr(values, "indices") and hasattr(values, "dictionary"):  # pyarrow DictionaryArray
        codes = values.indices.to_numpy(zero_copy_only=False)
        if values.indices.null_count:
            codes = np.where(np.isnan(codes), -1, codes)
        distinct, missing = values.dictionary.to_numpy(zero_copy_only=False), None
    elif hasattr(values, "codes") and hasattr(values, "categories"):  # pandas Categorical
        codes, distinct, missing = np.asarray(values.codes), np.asarray(values.categories), math.nan
    elif hasattr(values, "cat") and hasattr(values, "dtype") and str(values.dtype) == "category":  # Series
        codes, distinct, missing = np.asarray(values.cat.codes), np.asarray(values.cat.categories), math.nan
    else:
        return None
    return np.asarray(distinct, dtype=object), codes.astype(np.intp, copy=False), missing


def _check_category(feat: Feature, distinct: np.ndarray, codes: np.ndarray, missing: Any):
    """The category check on dictionary-encoded data: same verdicts and messages, no per-row Python."""
    lookup = np.append(distinct, np.array([missing], dtype=object))  # code -1 reads the missing value
    allowed = set(feat.categories or ())
    d_not_str = np.array([not isinstance(v, str) for v in lookup], dtype=bool)
    d_unknown = np.array([isinstance(v, str) and v not in allowed for v in lookup], dtype=bool)
    not_str, unknown = d_not_str[codes], d_unknown[codes]
    problems = []
    if not_str.any():
        problems.append((not_str, lambda i: f"{feat.name}={_show(lookup[codes[i]])} is not a string"))
    if unknown.any():
        problems.append((unknown, lambda i: f"{feat.name}={lookup[codes[i]]!r} is not one of {sorted(allowed)}"))
    clean_lookup = lookup.copy()
    clean_lookup[d_not_str | d_unknown] = feat.categories[0] if feat.categories else ""
    return clean_lookup[codes], problems


def _check_column(feat: Feature, values: Any):
    if feat.dtype == "category":
        parts = _dictionary_parts(values)
        if parts is not None:
            return _check_category(feat, *parts)
    raw = _to_array(values)
    if raw.dtype.kind in "US" and feat.dtype in NUMERIC:  # a list mixing numbers and text
        raw = np.asarray(list(values), dtype=object)
    problems = []
    if feat.dtype == "category":
        strings = np.array([str(v) if isinstance(v, str) else None for v in raw], dtype=object)
        not_str = np.array([s is None for s in strings], dtype=bool)
        if not_str.any():
            problems.append((not_str, lambda i: f"{feat.name}={_show(raw[i])} is not a string"))
        allowed = set(feat.categories or ())
        unknown = np.array([s is not None and s not in allowed for s in strings], dtype=bool)
        if unknown.any():
            problems.append(
                (unknown, lambda i: f"{feat.name}={strings[i]!r} is not one of {sorted(allowed)}")
            )
        clean = strings.copy()  # the messages above still read the original values
        clean[not_str | unknown] = feat.categories[0] if feat.categories else ""
        return clean, problems

    nums, not_number = _as_float(raw)
    if not_number.any():
        problems.append((not_number, lambda i: f"{feat.name}={_show(raw[i])} is not a number"))
    nonfinite = ~np.isfinite(nums) & ~not_number
    if nonfinite.any():
        problems.append((nonfinite, lambda i: f"{feat.name} is {_show(nums[i])}"))
    finite = np.isfinite(nums)
    if feat.dtype == "bool":
        bad = finite & (nums != 0) & (nums != 1)
        if bad.any():
            problems.append((bad, lambda i: f"{feat.name}={_show(raw[i])} is not true/false (0 or 1)"))
    elif feat.dtype == "int":
        bad = finite & (nums != np.round(nums))
        if bad.any():
            problems.append((bad, lambda i: f"{feat.name}={_show(raw[i])} is not a whole number"))
    if feat.min is not None:
        low = finite & (nums < feat.min)
        if low.any():
            problems.append((low, lambda i: f"{feat.name}={_show(nums[i])} is below the minimum {feat.min:g}"))
    if feat.max is not None:
        high = finite & (nums > feat.max)
        if high.any():
            problems.append((high, lambda i: f"{feat.name}={_show(nums[i])} is above the maximum {feat.max:g}"))
    if not problems:
        return nums, problems
    clean = nums.copy()  # the messages above still read the original values
    for mask, _ in problems:
        clean[mask] = feat.min if feat.min is not None else 0.0
    return clean, problems


def _show(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):g}"
    return repr(v.item() if isinstance(v, np.generic) else v)
