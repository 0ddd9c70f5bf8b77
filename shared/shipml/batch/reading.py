"""The read side of a batch job: which files, checked up front, streamed in chunks, read ahead in a thread.

CSV is parsed by pyarrow with typed columns (the fast path); a block holding text where a number belongs
is re-read as text so those values reach the schema check and end in quarantine, not in an error. Lines
the parser cannot split are handed on as ``malformed`` (quarantined too). Parquet is read row group by row
group. Every problem with a *file* (unreadable, empty, truncated, corrupt, a missing column) is one
:class:`~shipml.errors.ShipmlError` line naming the file.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shipml.data import TABLE_SUFFIXES, table_format
from shipml.errors import ShipmlError
from shipml.schema import FeatureSchema

DEFAULT_CHUNK_ROWS = 100_000
CSV_BLOCK_BYTES = 1 << 20


class Malformed(NamedTuple):
    """A CSV line the parser could not split into the header's fields: where it is, its id if any, why."""

    line: int | None  # physical line number in the file (the header is line 1)
    id: str | None  # the line's id field, when the line has one
    reason: str


@dataclass
class Chunk:
    """Rows ``first_row`` … of one input file; ``malformed`` holds lines the CSV parser could not split."""

    source: str
    first_row: int
    batch: pa.RecordBatch
    malformed: list[Malformed] = field(default_factory=list)


class _NeedLineNumbers(Exception):
    """pyarrow numbers invalid rows only when it parses serially: re-read the rest of the file that way."""


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
    return [path]


def preflight(files: list[Path], schema: FeatureSchema) -> None:
    """Check every file's header or footer before anything is written: fail fast, with the file's name."""
    for path in files:
        if table_format(path) == "parquet":
            _needed(schema, _parquet_file(path).schema_arrow.names, path)
        else:
            _csv_columns(path, schema)


def iter_chunks(files: list[Path], schema: FeatureSchema, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                ignored: list[str] | None = None) -> Iterator[Chunk]:
    """Every chunk of every input file, in order (the read side of the engine, also used alone).

    Names of input columns the model does not use are added to ``ignored``.
    """
    ignored = [] if ignored is None else ignored
    for path in files:
        reader = _parquet_chunks if table_format(path) == "parquet" else _csv_chunks
        yield from reader(path, schema, chunk_rows, ignored)


def total_rows(files: list[Path]) -> int | None:
    """Row count from Parquet footers (free); None for CSV (unknown until read)."""
    try:
        if all(table_format(p) == "parquet" for p in files):
            return sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    except (pa.ArrowInvalid, OSError):
        pass
    return None


def id_type(path: Path, schema: FeatureSchema) -> pa.DataType:
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


def prefetch(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
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


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: errors are one line for the user."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# ---- CSV ----------------------------------------------------------------------------------------

def _csv_columns(path: Path, schema: FeatureSchema) -> tuple[list[str], list[str]]:
    """(columns to read, columns ignored) of a CSV, after checking its header and its last line."""
    if path.stat().st_size == 0:
        raise ShipmlError(f"{path}: the file is empty (0 bytes)")
    with open(path, newline="") as f:
        first = f.readline()
    if not first.strip():
        raise ShipmlError(f"{path}: no header line (the file is empty or starts with a blank line)")
    header = next(csv.reader([first]))
    columns = _needed(schema, header, path)
    _check_csv_complete(path, len(header))
    return columns


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
    columns, ignored = _csv_columns(path, schema)
    extra.extend(c for c in ignored if c not in extra)
    block_size = _block_size(path, chunk_rows)
    with open(path, newline="") as f:
        header = next(csv.reader([f.readline()]))
    id_at = header.index(schema.id_column) if schema.id_column in header else None
    malformed: list[Malformed] = []

    def invalid_row(row: Any) -> str:
        malformed.append(Malformed(row.number, _field(row.text, id_at),
                                   f"malformed line: {row.actual_columns} fields instead of "
                                   f"{row.expected_columns}: {row.text[:200]!r}"))
        return "skip"

    def numbered() -> bool:
        """Every malformed line so far has its line number (else: re-read serially, which numbers them)."""
        if serial or all(m.line is not None for m in malformed):
            return True
        raise _NeedLineNumbers

    # Parsing in parallel is fast but leaves invalid rows unnumbered; a file with a malformed line is
    # re-read serially from the first row not delivered yet, so the quarantine can say where it is.
    row, consumed, tolerant, serial = 0, 0, False, False
    while True:
        try:
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(
                block_size=block_size, skip_rows_after_names=consumed, use_threads=not serial),
                parse_options=pacsv.ParseOptions(invalid_row_handler=invalid_row),
                convert_options=pacsv.ConvertOptions(column_types=_csv_types(schema, tolerant),
                                                     include_columns=columns, strings_can_be_null=True))
            pending: list[pa.RecordBatch] = []
            n_pending = 0
            for batch in reader:
                pending.append(batch)
                n_pending += batch.num_rows
                if n_pending >= chunk_rows and numbered():
                    chunk = _joined(path, row, pending, malformed)
                    yield chunk
                    row += chunk.batch.num_rows
                    consumed += chunk.batch.num_rows + len(chunk.malformed)
                    pending, n_pending, malformed[:] = [], 0, []
            if (pending or malformed) and numbered():
                yield _joined(path, row, pending or [pa.RecordBatch.from_pylist([], schema=reader.schema)], malformed)
            return
        except _NeedLineNumbers:
            serial, malformed[:] = True, []
        except pa.ArrowInvalid as exc:
            if tolerant or "conversion error" not in str(exc).lower():
                raise ShipmlError(f"{path}: cannot read CSV: {first_line(exc)}") from None
            tolerant, malformed[:] = True, []  # re-read from the first row not delivered yet, as text
        except (OSError, UnicodeDecodeError) as exc:
            raise ShipmlError(f"{path}: cannot read CSV: {first_line(exc)}") from None


def _block_size(path: Path, chunk_rows: int) -> int:
    """pyarrow's block size for ``path``: about ``chunk_rows`` rows (by the first 64 KiB's bytes per line),
    at most ``CSV_BLOCK_BYTES``.

    Small blocks are put together into chunks of ``chunk_rows``: pyarrow reads a fixed number of blocks
    ahead, so the block size (not the chunk size) decides how much of the file sits in memory early on."""
    with open(path, "rb") as f:
        sample = f.read(1 << 16)
    bytes_per_row = max(8, len(sample) / max(1, sample.count(b"\n")))
    return int(min(CSV_BLOCK_BYTES, max(1 << 16, chunk_rows * bytes_per_row)))


def _field(text: str, at: int | None) -> str | None:
    """Field ``at`` of one CSV line, or None when the line is too short or has an empty field there."""
    if at is None:
        return None
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return None
    return (fields[at].strip() or None) if at < len(fields) else None


def _joined(path: Path, row: int, batches: list[pa.RecordBatch], malformed: list) -> Chunk:
    if len(batches) == 1:
        return Chunk(str(path), row, batches[0], list(malformed))
    table = pa.Table.from_batches(batches).unify_dictionaries().combine_chunks()
    return Chunk(str(path), row, table.to_batches()[0], list(malformed))


# ---- Parquet ------------------------------------------------------------------------------------

def _parquet_file(path: Path) -> pq.ParquetFile:
    if path.stat().st_size == 0:
        raise ShipmlError(f"{path}: the file is empty (0 bytes)")
    try:
        # pre_buffer (the default) reads the whole file before the first batch, so memory would grow with
        # the compressed file size; without it one row group at a time is read (measured on pyarrow 26).
        return pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ShipmlError(f"{path}: not a readable Parquet file (corrupt or truncated?): {first_line(exc)}") from None


def _parquet_chunks(path: Path, schema: FeatureSchema, chunk_rows: int, extra: list[str]) -> Iterator[Chunk]:
    pf = _parquet_file(path)
    columns, ignored = _needed(schema, pf.schema_arrow.names, path)
    extra.extend(c for c in ignored if c not in extra)
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
            yield Chunk(str(path), row, batch)
            row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise ShipmlError(f"{path}: Parquet data is corrupt after row {row:,}: {first_line(exc)}") from None
