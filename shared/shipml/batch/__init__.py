"""Batch scoring: a CSV or Parquet file (or a folder of them) through a model bundle, in chunks.

Why chunks: the lecture's snippet reads the whole file into memory (``pd.read_csv``) and predicts in one
call, so memory grows with the file. Here pyarrow streams the input ``chunk_rows`` rows at a time, each
chunk is validated with the bundle's schema, scored, and appended to the output — memory stays flat
however large the input is.

Guarantees, each tested:

* **nothing is lost**: a row that fails validation goes to the quarantine file with its original values
  and the reason; ``rows_in == rows_scored + rows_quarantined`` always;
* **atomic output**: output and quarantine are written under temporary names (``.NAME.partial``) and
  renamed only when the whole job succeeded; a failed or killed job never leaves a file that looks complete;
* **clear errors**: an unreadable path, a corrupt or truncated file, an empty file, a missing column or a
  wrong suffix end as one :class:`~shipml.errors.ShipmlError` line.

Engines: ``local`` (this process; a reader thread keeps the next chunk coming while this one is scored)
and ``dask`` (the same :func:`score_chunk` runs on a ``dask.distributed`` cluster: an embedded
LocalCluster, or an existing one given by its scheduler address). Both write the same output.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shipml.data import TABLE_SUFFIXES, table_format
from shipml.errors import ShipmlError
from shipml.predictor import Predictor, load_predictor
from shipml.schema import FeatureSchema

DEFAULT_CHUNK_ROWS = 100_000
CSV_BLOCK_BYTES = 1 << 20
OUTPUT_COLUMNS = ("prediction", "probability", "model", "model_version")
QUARANTINE_COLUMNS = ("source", "row", "reason")


# ---- the summary --------------------------------------------------------------------------------

@dataclass
class BatchSummary:
    """What a batch job did: the counts always add up (``rows_in == rows_scored + rows_quarantined``)."""

    model: str
    model_version: int
    engine: str
    inputs: list[str]
    output: str
    quarantine: str
    rows_in: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    chunks: int = 0
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows_in / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second, 1)}

    def __str__(self) -> str:
        lines = [
            f"model      {self.model} v{self.model_version} (engine {self.engine})",
            f"input      {len(self.inputs)} file(s): {', '.join(Path(p).name for p in self.inputs[:3])}"
            + (" ..." if len(self.inputs) > 3 else ""),
            f"rows in    {self.rows_in:,}",
            f"scored     {self.rows_scored:,} -> {self.output}",
            f"quarantine {self.rows_quarantined:,} -> {self.quarantine}",
            f"speed      {self.rows_per_second:,.0f} rows/s ({self.seconds:.2f} s, {self.chunks} chunks)",
            f"peak RSS   {self.peak_memory_mb:,.0f} MB",
        ]
        if self.ignored_columns:
            lines.append(f"ignored    extra column(s): {', '.join(self.ignored_columns)}")
        return "\n".join(lines)


# ---- reading ------------------------------------------------------------------------------------

@dataclass
class Chunk:
    """Rows ``first_row`` … of one input file; ``malformed`` holds lines the CSV parser could not split."""

    source: str
    first_row: int
    batch: pa.RecordBatch
    malformed: list[tuple[int | None, str]] = field(default_factory=list)


def input_files(path: str | Path) -> list[Path]:
    """The files to score: ``path`` itself, or the .csv/.parquet files of a folder (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in TABLE_SUFFIXES and p.is_file()
                       and not p.name.startswith("."))
        if not files:
            raise ShipmlError(f"{path}: folder holds no .csv or .parquet file")
        formats = {table_format(p) for p in files}
        if len(formats) > 1:
            raise ShipmlError(f"{path}: folder mixes CSV and Parquet files; score them separately")
        return files
    table_format(path)
    if not path.exists():
        raise ShipmlError(f"{path}: no such file or folder")
    if not os.access(path, os.R_OK):
        raise ShipmlError(f"{path}: permission denied (cannot read the input)")
    if path.stat().st_size == 0:
        raise ShipmlError(f"{path}: the file is empty (0 bytes)")
    return [path]


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        first = f.readline()
    if not first.strip():
        raise ShipmlError(f"{path}: no header line (the file is empty or starts with a blank line)")
    return next(csv.reader([first]))


def _check_csv_complete(path: Path, n_fields: int) -> None:
    """A CSV cut off mid-row ends without a newline on a line with too few fields: say so."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        f.seek(max(0, size - 65536))
        tail = f.read()
    if tail.endswith(b"\n"):
        return
    last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
    fields = len(next(csv.reader([last]))) if last else 0
    if fields != n_fields:
        raise ShipmlError(f"{path}: the file looks truncated: its last line is incomplete "
                          f"({fields} of {n_fields} fields, no final newline); re-export it")


def _needed(schema: FeatureSchema, names: list[str], path: Path) -> tuple[list[str], list[str]]:
    missing = [n for n in schema.names if n not in names]
    if missing:
        raise ShipmlError(f"{path}: missing column(s) {', '.join(missing)} "
                          f"(the model needs: {', '.join(schema.names)})")
    if schema.id_column not in names:
        raise ShipmlError(f"{path}: no '{schema.id_column}' column: batch output is keyed by it; add one")
    known = set(schema.names) | {schema.id_column} | ({schema.target} if schema.target else set())
    return [schema.id_column, *schema.names], [n for n in names if n not in known]


def _csv_types(schema: FeatureSchema, tolerant: bool) -> dict[str, pa.DataType]:
    """Typed parsing is the fast path; ``tolerant`` reads every feature as text (converted per chunk)."""
    types: dict[str, pa.DataType] = {}
    for feat in schema.features:
        if feat.dtype == "category":
            types[feat.name] = pa.dictionary(pa.int32(), pa.string())
        elif tolerant:
            types[feat.name] = pa.string()
        else:
            types[feat.name] = pa.bool_() if feat.dtype == "bool" else pa.float64()
    return types


def _csv_chunks(path: Path, schema: FeatureSchema, chunk_rows: int, extra: list[str]) -> Iterator[Chunk]:
    """Stream a CSV in blocks of about ``chunk_rows`` rows.

    Features are parsed as numbers directly (fast). If a block holds text where a number belongs, the
    parser stops; the file is then re-opened just after the rows already delivered with every feature
    read as text, so those values reach the schema check and end in quarantine with a reason.
    Lines with the wrong number of fields are handed on as ``malformed`` (quarantined too).
    """
    header = _csv_header(path)
    columns, ignored = _needed(schema, header, path)
    extra.extend(c for c in ignored if c not in extra)
    _check_csv_complete(path, len(header))
    with open(path, "rb") as f:
        sample = f.read(1 << 16)
    bytes_per_row = max(8, len(sample) / max(1, sample.count(b"\n")))
    # Small blocks, put together into chunks of ``chunk_rows``: pyarrow reads a fixed number of blocks
    # ahead, so the block size (not the chunk size) decides how much of the file sits in memory early on.
    block_size = int(min(CSV_BLOCK_BYTES, max(1 << 16, chunk_rows * bytes_per_row)))
    malformed: list[tuple[int | None, str]] = []

    def invalid_row(row: Any) -> str:
        malformed.append((row.number, f"malformed line: {row.actual_columns} fields instead of "
                          f"{row.expected_columns}: {row.text[:200]!r}"))
        return "skip"

    row, consumed, tolerant = 0, 0, False
    while True:
        try:
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=block_size, skip_rows_after_names=consumed),
                parse_options=pacsv.ParseOptions(invalid_row_handler=invalid_row),
                convert_options=pacsv.ConvertOptions(column_types=_csv_types(schema, tolerant),
                                                     include_columns=columns, strings_can_be_null=True),
            )
            pending: list[pa.RecordBatch] = []
            for batch in reader:
                pending.append(batch)
                if sum(b.num_rows for b in pending) >= chunk_rows:
                    chunk = _joined(path, row, pending, malformed)
                    yield chunk
                    row += chunk.batch.num_rows
                    consumed += chunk.batch.num_rows + len(chunk.malformed)
                    pending, malformed[:] = [], []
            if pending or malformed:
                yield _joined(path, row, pending or [pa.RecordBatch.from_pylist([], schema=reader.schema)], malformed)
            return
        except pa.ArrowInvalid as exc:
            if tolerant or "conversion error" not in str(exc).lower():
                raise ShipmlError(f"{path}: cannot read CSV: {_first_line(exc)}") from None
            tolerant, malformed[:] = True, []  # re-read from the first row not delivered yet, as text
        except (OSError, UnicodeDecodeError) as exc:
            raise ShipmlError(f"{path}: cannot read CSV: {_first_line(exc)}") from None


def _joined(path: Path, row: int, batches: list[pa.RecordBatch], malformed: list) -> Chunk:
    if len(batches) == 1:
        return Chunk(str(path), row, batches[0], list(malformed))
    table = pa.Table.from_batches(batches).unify_dictionaries().combine_chunks()
    return Chunk(str(path), row, table.to_batches()[0], list(malformed))


def _parquet_chunks(path: Path, schema: FeatureSchema, chunk_rows: int, extra: list[str]) -> Iterator[Chunk]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ShipmlError(f"{path}: not a readable Parquet file (corrupt or truncated?): {_first_line(exc)}") from None
    columns, ignored = _needed(schema, pf.schema_arrow.names, path)
    extra.extend(c for c in ignored if c not in extra)
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            yield Chunk(str(path), row, batch)
            row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise ShipmlError(f"{path}: Parquet data is corrupt after row {row:,}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def iter_chunks(files: list[Path], schema: FeatureSchema, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                ignored: list[str] | None = None) -> Iterator[Chunk]:
    """Every chunk of every input file, in order (the read side of the engine, also used alone)."""
    ignored = [] if ignored is None else ignored
    for path in files:
        reader = _parquet_chunks if table_format(path) == "parquet" else _csv_chunks
        yield from reader(path, schema, chunk_rows, ignored)


def preflight(files: list[Path], schema: FeatureSchema) -> None:
    """Check every file's header or footer before anything is written: fail fast, with the file's name."""
    for path in files:
        if path.stat().st_size == 0:
            raise ShipmlError(f"{path}: the file is empty (0 bytes)")
        if table_format(path) == "parquet":
            try:
                names = pq.ParquetFile(path).schema_arrow.names
            except (pa.ArrowInvalid, OSError) as exc:
                raise ShipmlError(f"{path}: not a readable Parquet file (corrupt or truncated?): "
                                  f"{_first_line(exc)}") from None
            _needed(schema, names, path)
        else:
            header = _csv_header(path)
            _needed(schema, header, path)
            _check_csv_complete(path, len(header))


def total_rows(files: list[Path]) -> int | None:
    """Row count from Parquet footers (free); None for CSV (unknown until read)."""
    try:
        if all(table_format(p) == "parquet" for p in files):
            return sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    except (pa.ArrowInvalid, OSError):
        pass
    return None


def _prefetch(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """Read the next chunks in a thread while this one is scored (pyarrow releases the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for c in chunks:
                while not stop.is_set():
                    try:
                        q.put(c, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    t = threading.Thread(target=work, name="shipml-batch-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


# ---- scoring one chunk (both engines run this) -------------------------------------------------

@dataclass
class ChunkResult:
    scored: pa.RecordBatch
    quarantined: pa.Table | None
    rows_in: int


def _numeric(col: pa.Array) -> np.ndarray:
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
    return np.array(col.to_pylist(), dtype=object)


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


def score_chunk(predictor: Predictor, chunk: Chunk) -> ChunkResult:
    """Validate one chunk with the bundle's schema, score the good rows, describe the bad ones."""
    schema, batch = predictor.schema, chunk.batch
    data = {}
    for feat in schema.features:
        col = batch.column(feat.name)
        data[feat.name] = _category(col) if feat.dtype == "category" else _numeric(col)
    validation = schema.validate(data)
    bad = validation.bad_rows
    n_bad = int(bad.sum())
    features = validation.columns
    ids = batch.column(schema.id_column)
    features = {**features, **_as_categorical(schema, data)}
    if n_bad:
        good = ~bad
        features = {k: v[good] for k, v in features.items()}
        ids = ids.filter(pa.array(good))
    n = len(ids)
    if n:
        proba = np.asarray(predictor.predict_proba(features))
        best = proba.argmax(axis=1)
        labels = np.asarray(predictor.metadata.class_labels)[best]
        p = proba[:, 1] if proba.shape[1] == 2 else proba[np.arange(n), best]
    else:
        labels, p = np.zeros(0, dtype=np.int64), np.zeros(0)
    scored = pa.record_batch(
        [ids, pa.array(labels), pa.array(p, type=pa.float64()), _constant(predictor.name, n),
         pa.array(np.full(n, predictor.version, dtype=np.int32))],
        names=[schema.id_column, *OUTPUT_COLUMNS],
    )
    quarantined = _quarantine_table(chunk, schema, bad, validation.reasons) if n_bad or chunk.malformed else None
    return ChunkResult(scored, quarantined, batch.num_rows + len(chunk.malformed))


def _quarantine_table(chunk: Chunk, schema: FeatureSchema, bad: np.ndarray, reasons: list[str]) -> pa.Table:
    """Bad rows with their original values (as text), where they came from, and why."""
    columns = [schema.id_column, *schema.names]
    idx = np.flatnonzero(bad)
    rows: dict[str, list[Any]] = {
        "source": [Path(chunk.source).name] * len(idx),
        "row": (idx + chunk.first_row).tolist(),
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
    for number, reason in chunk.malformed:  # lines the CSV parser could not even split into fields
        rows["source"].append(Path(chunk.source).name)
        rows["row"].append(number if number is not None else -1)
        for name in columns:
            rows[name].append(None)
        rows["reason"].append(reason)
    return pa.table({k: pa.array(rows[k], type=pa.int64() if k == "row" else pa.string())
                     for k in ["source", "row", *columns, "reason"]})


# ---- writing ------------------------------------------------------------------------------------

class _AtomicTable:
    """A CSV or Parquet file written under ``.NAME.partial`` and renamed to NAME by :meth:`commit`."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = Path(path)
        self.format = table_format(self.path)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self.schema = schema
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_dir():
            raise ShipmlError(f"{self.path}: is a folder; give a file name for the output")
        if self.format == "parquet":
            self.writer: Any = pq.ParquetWriter(self.tmp, schema)
        else:
            self.writer = pacsv.CSVWriter(self.tmp, schema)

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        if data.num_rows:
            if isinstance(data, pa.RecordBatch):
                data = pa.Table.from_batches([data])
            self.writer.write_table(data.cast(self.schema))

    def commit(self) -> None:
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # closing a half-written file may fail; it is deleted next
            self.writer.close()
        self.tmp.unlink(missing_ok=True)


class _WriterThread:
    """Writes in a thread (pyarrow releases the GIL while encoding and compressing) so scoring goes on.

    At most ``depth`` pieces wait; an error in the thread is raised in the caller at the next call.
    """

    def __init__(self, depth: int = 2) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="shipml-batch-writer", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:
                try:
                    item[0].write(item[1])
                except BaseException as exc:  # handed to the caller
                    self.error = exc

    def write(self, table: _AtomicTable, data: Any) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((table, data))

    def close(self) -> None:
        """Wait until everything queued is written; raise the thread's error if there was one."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def _quarantine_schema(schema: FeatureSchema) -> pa.Schema:
    return pa.schema([("source", pa.string()), ("row", pa.int64())]
                     + [(n, pa.string()) for n in [schema.id_column, *schema.names]] + [("reason", pa.string())])


def default_quarantine_path(output: str | Path) -> Path:
    """``scores.parquet`` → ``scores.quarantine.csv`` next to it."""
    output = Path(output)
    return output.with_name(f"{output.stem}.quarantine.csv")


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


# ---- the job ------------------------------------------------------------------------------------

def score(
    model: str | Path | Predictor,
    input: str | Path,
    output: str | Path,
    quarantine: str | Path | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    engine: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    threads: int | None = 1,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Score ``input`` (a file or folder) with the bundle ``model``; write ``output`` and ``quarantine``.

    ``engine`` is ``local`` or ``dask`` (``scheduler`` = address of an existing cluster, else an
    embedded LocalCluster with ``workers`` processes). ``threads`` caps the model's own thread pool
    (OpenMP/BLAS) in the local engine: one thread scores while the reader thread uses the other core,
    which on a small machine beats letting both fight over every core (None = the library default).
    ``on_chunk(n_rows_done)`` is called after every chunk (tests use it to fail a job half-way).
    """
    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    if chunk_rows < 1:
        raise ShipmlError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    if engine not in ("local", "dask"):
        raise ShipmlError(f"unknown engine '{engine}'; choose local or dask")
    output = Path(output)
    quarantine = Path(quarantine) if quarantine else default_quarantine_path(output)
    table_format(output)
    table_format(quarantine)
    files = input_files(input)
    if output.resolve() in {p.resolve() for p in files} or quarantine.resolve() == output.resolve():
        raise ShipmlError(f"{output}: output would overwrite an input or the quarantine file; choose another name")
    predictor = model if isinstance(model, Predictor) else load_predictor(model)
    schema = predictor.schema
    id_type = _id_type(files[0], schema)
    out_schema = pa.schema([(schema.id_column, id_type), ("prediction", pa.int64()), ("probability", pa.float64()),
                            ("model", pa.dictionary(pa.int32(), pa.string())), ("model_version", pa.int32())])
    summary = BatchSummary(predictor.name, predictor.version, engine, [str(p) for p in files], str(output),
                           str(quarantine))
    started = time.perf_counter()
    peak = _rss_mb()
    preflight(files, schema)
    out = bad = writer = None
    limits = threadpool_limits(limits=threads) if threads and engine == "local" else None
    try:
        out = _AtomicTable(output, out_schema)
        bad = _AtomicTable(quarantine, _quarantine_schema(schema))
        writer = _WriterThread()
        chunks = iter_chunks(files, schema, chunk_rows, summary.ignored_columns)
        if engine == "local":
            results: Iterator[ChunkResult] = (score_chunk(predictor, c) for c in _prefetch(chunks))
        else:
            from shipml.batch.scaleout import dask_results

            results = dask_results(predictor.path, chunks, scheduler=scheduler, workers=workers)
        with tqdm(total=total_rows(files), unit="rows", unit_scale=True, disable=not progress,
                  desc=f"score {predictor.name} v{predictor.version}", mininterval=0.5) as bar:
            for result in results:
                writer.write(out, result.scored)
                if result.quarantined is not None:
                    writer.write(bad, result.quarantined)
                    summary.rows_quarantined += result.quarantined.num_rows
                summary.rows_in += result.rows_in
                summary.rows_scored += result.scored.num_rows
                summary.chunks += 1
                bar.update(result.rows_in)
                peak = max(peak, _rss_mb())
                if on_chunk:
                    on_chunk(summary.rows_in)
        writer, finishing = None, writer
        finishing.close()
        if summary.rows_in == 0:
            raise ShipmlError(f"{input}: no rows to score (the input holds a header but no data)")
        if summary.rows_in != summary.rows_scored + summary.rows_quarantined:  # a bug, never a user error
            raise RuntimeError(f"rows in {summary.rows_in} != scored {summary.rows_scored} "
                               f"+ quarantined {summary.rows_quarantined}")
        bad.commit()
        out.commit()
    except BaseException:
        if writer is not None:
            with contextlib.suppress(BaseException):
                writer.close()
        for table in (out, bad):
            if table is not None:
                table.abort()
        raise
    finally:
        if limits is not None:
            limits.restore_original_limits()
    summary.seconds = time.perf_counter() - started
    summary.peak_memory_mb = round(peak, 1)
    return summary


def _id_type(path: Path, schema: FeatureSchema) -> pa.DataType:
    """The id column's type, from the first file (Parquet footer or the CSV's first rows)."""
    try:
        if table_format(path) == "parquet":
            names = pq.ParquetFile(path).schema_arrow
            return names.field(schema.id_column).type if schema.id_column in names.names else pa.int64()
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        head = head[: head.rfind(b"\n") + 1] or head
        table = pacsv.read_csv(io.BytesIO(head), convert_options=pacsv.ConvertOptions(
            include_columns=[schema.id_column]))
        return table.schema.field(schema.id_column).type
    except (pa.ArrowInvalid, OSError, KeyError):
        return pa.int64()  # the reader says what is wrong with the file, with its name
