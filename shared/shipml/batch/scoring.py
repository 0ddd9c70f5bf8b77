"""One chunk in, predictions and quarantine rows out: the work both engines (local, Dask) do per chunk.

The chunk's columns are converted for the bundle's schema, every row is validated, the good rows are
scored, and every bad row is described — with its original values, where it came from and why — so
``rows_in == rows scored + rows quarantined`` for every chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipml.batch.reading import Chunk
from shipml.predictor import Predictor
from shipml.schema import FeatureSchema

OUTPUT_COLUMNS = ("prediction", "probability", "model", "model_version")
REPEATING_COLUMNS = ("prediction", "model", "model_version")  # few distinct values: worth a dictionary


@dataclass
class ChunkResult:
    scored: pa.RecordBatch
    quarantined: pa.Table | None
    rows_in: int
    features: dict[str, Any] | None = None  # the scored rows' features, for the prediction log (keep_features)
    scores: Any = None  # their positive-class probability (keep_features)


def output_schema(schema: FeatureSchema, id_type: pa.DataType) -> pa.Schema:
    """The output's columns: the input's id, then :data:`OUTPUT_COLUMNS`."""
    return pa.schema([(schema.id_column, id_type), ("prediction", pa.int64()), ("probability", pa.float64()),
                      ("model", pa.dictionary(pa.int32(), pa.string())), ("model_version", pa.int32())])


def quarantine_schema(schema: FeatureSchema) -> pa.Schema:
    """The quarantine's columns: where the row came from (``row``: its index among the file's data rows;
    ``line``: the file line, for lines the CSV parser could not split), its original values as text, and why."""
    return pa.schema([("source", pa.string()), ("row", pa.int64()), ("line", pa.int64())]
                     + [(n, pa.string()) for n in [schema.id_column, *schema.names]] + [("reason", pa.string())])


def score_chunk(predictor: Predictor, chunk: Chunk, keep_features: bool = False) -> ChunkResult:
    """Validate one chunk with the bundle's schema, score the good rows, describe the bad ones.

    ``keep_features`` also returns the scored rows' features and positive-class scores (the prediction log).
    """
    schema, batch = predictor.schema, chunk.batch
    data = {}
    for feat in schema.features:
        col = batch.column(feat.name)
        data[feat.name] = _category(col) if feat.dtype == "category" else _numeric(col)
    validation = schema.validate(data)
    bad = validation.bad_rows
    n_bad = int(bad.sum())
    ids = batch.column(schema.id_column)
    features = {**validation.columns, **_as_categorical(schema, data)}
    if n_bad:
        good = ~bad
        features = {k: v[good] for k, v in features.items()}
        ids = ids.filter(pa.array(good))
    n = len(ids)
    if n:
        proba = np.asarray(predictor.predict_proba(features))
        best = predictor.decide(proba)  # the bundle's decision threshold, as the API and edge use it
        p = proba[:, 1] if proba.shape[1] == 2 else proba[np.arange(n), best]
        labels = np.asarray(predictor.metadata.class_labels)[best]
    else:
        labels, p = np.zeros(0, dtype=np.int64), np.zeros(0)
    scored = pa.record_batch(
        [ids, pa.array(labels), pa.array(p, type=pa.float64()), _constant(predictor.name, n),
         pa.array(np.full(n, predictor.version, dtype=np.int32))],
        names=[schema.id_column, *OUTPUT_COLUMNS],
    )
    quarantined = _quarantine_table(chunk, schema, bad, validation.reasons) if n_bad or chunk.malformed else None
    result = ChunkResult(scored, quarantined, batch.num_rows + len(chunk.malformed))
    if keep_features:
        result.features = features
        result.scores = np.asarray(proba)[:, -1] if n else np.zeros(0)
    return result


# ---- Arrow columns as the schema check takes them ---------------------------------------------

def _numeric(col: pa.Array) -> Any:
    """float64 numpy from any Arrow column; text that is not a number stays as text for the schema to report."""
    if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_boolean(col.type):
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(col))
        try:  # true/false as CSV writes booleans
            as_bool = pc.cast(lowered, pa.bool_())
            return pc.cast(as_bool, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        return np.array([_parse_number(v) for v in col.to_pylist()], dtype=object)  # slow path: bad chunk only
    return np.array(col.to_pylist(), dtype=object)  # any other type: the schema check reports its values


def _parse_number(v: str | None) -> Any:
    if v is None:
        return None
    s = v.strip().lower()
    if s in ("", "nan", "null", "na"):  # the CSV reader's missing values, the same in any format
        return None
    if s in ("true", "false"):
        return s == "true"
    try:
        return float(s)
    except ValueError:
        return v


def _category(col: pa.Array) -> Any:
    """Dictionary-encoded, so the schema checks each distinct value once; any other type as Python values."""
    if pa.types.is_dictionary(col.type):
        return col
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return pc.dictionary_encode(col)
    return np.array(col.to_pylist(), dtype=object)


def _as_categorical(schema: FeatureSchema, data: dict[str, Any]) -> dict[str, Any]:
    """Category columns as pandas Categoricals built from their Arrow dictionary: no per-row work at all.

    scikit-learn takes them as fast as it takes anything, and building one costs nothing (the codes are
    reused). Only columns whose every distinct value is a valid category qualify (then they hold exactly
    the values the schema check passed).
    """
    import pandas as pd

    out = {}
    for feat in schema.features:
        col = data[feat.name]
        if feat.dtype == "category" and isinstance(col, pa.DictionaryArray) and col.null_count == 0:
            values = col.dictionary.to_pylist()
            if values and all(isinstance(v, str) and v in (feat.categories or ()) for v in values):
                out[feat.name] = pd.Categorical.from_codes(col.indices.to_numpy(),
                                                           categories=pd.Index(values, dtype=object))
    return out


def _constant(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


# ---- quarantine ---------------------------------------------------------------------------------

def _quarantine_table(chunk: Chunk, schema: FeatureSchema, bad: np.ndarray, reasons: list[str]) -> pa.Table:
    """Bad rows with their original values (as text), where they came from, and why."""
    columns = [schema.id_column, *schema.names]
    idx = np.flatnonzero(bad)
    rows: dict[str, list[Any]] = {
        "source": [Path(chunk.source).name] * len(idx),
        "row": (idx + chunk.first_row).tolist(),
        "line": [None] * len(idx),  # known for malformed lines only (a quoted field may span lines)
    }
    taken = chunk.batch.take(pa.array(idx)) if len(idx) else None
    for name in columns:
        if taken is None:
            rows[name] = []
            continue
        col = taken.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        rows[name] = pc.cast(col, pa.string()).to_pylist()
    rows["reason"] = list(reasons)
    for bad_line in chunk.malformed:  # lines the CSV parser could not even split into fields
        rows["source"].append(Path(chunk.source).name)
        rows["row"].append(None)
        rows["line"].append(bad_line.line)
        for name in columns:
            rows[name].append(bad_line.id if name == schema.id_column else None)
        rows["reason"].append(bad_line.reason)
    return pa.table(rows, schema=quarantine_schema(schema))
