"""The batch job: :func:`score` reads, scores and writes with a progress bar; :class:`BatchSummary` says what it did."""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shipml.batch.local import local_results
from shipml.batch.reading import DEFAULT_CHUNK_ROWS, id_type, input_files, iter_chunks, preflight, total_rows
from shipml.batch.scoring import REPEATING_COLUMNS, ChunkResult, output_schema, quarantine_schema
from shipml.batch.writing import AtomicTable, WriterThread, default_quarantine_path, partial_path
from shipml.data import table_format
from shipml.errors import ShipmlError
from shipml.predictor import Predictor, load_predictor


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
    prediction_log: Any = None,
) -> BatchSummary:
    """Score ``input`` (a file or folder) with the bundle ``model``; write ``output`` and ``quarantine``.

    ``engine`` is ``local`` or ``dask`` (``scheduler`` = address of an existing cluster, else an
    embedded LocalCluster with ``workers`` processes). The local engine reads in this thread and scores
    chunks on ``workers`` threads, each with the model's own thread pool (OpenMP/BLAS) capped at
    ``threads`` (None = the library default): single-threaded scorers, one per core, beat one scorer whose
    OpenMP threads spin against the reader and each other for the same cores (measured on a busy 2-core
    machine: gradient boosting predicted 2.7x slower with two OpenMP threads than with one).
    ``on_chunk(n_rows_done)`` is called after every chunk (tests use it to fail a job half-way).
    ``prediction_log`` (a :class:`shipml.monitoring.predlog.PredictionLog`, local engine) receives every scored
    row with its features; the job waits for room in its queue rather than drop rows.
    """
    if prediction_log is not None and engine != "local":
        raise ShipmlError("the prediction log runs with the local engine (--engine local)")

    output, quarantine, files = _checked_paths(input, output, quarantine, chunk_rows, workers, engine)
    predictor = model if isinstance(model, Predictor) else load_predictor(model)
    schema = predictor.schema
    summary = BatchSummary(predictor.name, predictor.version, engine, [str(p) for p in files], str(output),
                           str(quarantine))
    started = time.perf_counter()
    preflight(files, schema)
    out = bad = writer = results = None
    with _native_threads(threads, engine) as controller:
        try:
            out = AtomicTable(output, output_schema(schema, id_type(files[0], schema)), repeating=REPEATING_COLUMNS)
            bad = AtomicTable(quarantine, quarantine_schema(schema))
            writer = WriterThread()
            chunks = iter_chunks(files, schema, chunk_rows, summary.ignored_columns)
            results = _chunk_results(engine, predictor, chunks, workers, threads, controller, scheduler,
                                     keep_features=prediction_log is not None)
            log_rows = _row_logger(prediction_log, predictor) if prediction_log is not None else None
            peak = _write_all(results, writer, out, bad, summary, total_rows(files), progress, on_chunk, log_rows)
            writer, finishing = None, writer
            finishing.close()
            summary.peak_memory_mb = round(peak, 1)
            _check_counts(summary, input)
            bad.commit()
            out.commit()
        except BaseException:
            _abandon(results, writer, {output: out, quarantine: bad})
            raise
    summary.seconds = time.perf_counter() - started
    return summary


def _chunk_results(engine: str, predictor: Predictor, chunks: Iterator[Any], workers: int, threads: int | None,
                   controller: Any, scheduler: str | None, keep_features: bool) -> Any:
    """The scored chunks, in input order, from the engine the job chose: scoring threads in this process
    (local) or a Dask cluster given the bundle's path (dask)."""
    if engine == "local":
        return local_results(predictor, chunks, workers, threads, controller, keep_features=keep_features)
    from shipml.batch.scaleout import dask_results

    return dask_results(predictor.path, chunks, scheduler=scheduler, workers=workers)


@contextlib.contextmanager
def _native_threads(threads: int | None, engine: str) -> Iterator[Any]:
    """Cap the model's OpenMP/BLAS pools at ``threads`` for the job's duration (local engine), then restore them.

    Yields the ``ThreadpoolController`` (it finds the native libraries once; the scoring threads reuse it), or
    None where nothing is capped."""
    if not threads or engine != "local":
        yield None
        return
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    limits = controller.limit(limits=threads)
    try:
        yield controller
    finally:
        limits.restore_original_limits()


def _row_logger(prediction_log: Any, predictor: Predictor) -> Callable[[ChunkResult], None]:
    """Monitoring: hands every scored chunk's rows, with their features, to the prediction log (waiting for
    room in its queue rather than dropping rows)."""
    id_column = predictor.schema.id_column

    def log_rows(result: ChunkResult) -> None:
        prediction_log.record_columns(result.scored.column(id_column).to_pylist(), predictor.name,
                                      predictor.version, result.features, result.scores,
                                      result.scored.column("prediction").to_numpy(), block=True)

    return log_rows


def _check_counts(summary: BatchSummary, input: str | Path) -> None:
    """Refuse to commit an empty job, or one whose rows do not add up (every row is scored or quarantined)."""
    if summary.rows_in == 0:
        raise ShipmlError(f"{input}: no rows to score (the input holds a header but no data)")
    if summary.rows_in != summary.rows_scored + summary.rows_quarantined:  # a bug, never a user error
        raise RuntimeError(f"rows in {summary.rows_in} != scored {summary.rows_scored} "
                           f"+ quarantined {summary.rows_quarantined}")


def _abandon(results: Any, writer: WriterThread | None, tables: dict[Path, AtomicTable | None]) -> None:
    """A failed job: stop the scoring threads or the Dask cluster now (not when collected), stop the writer,
    and drop the half-written tables so no partial output is left behind.

    A table still ``None`` may have been interrupted while it was being opened (Ctrl-C or SIGTERM right at
    the start): its partial file can exist without the object, so it is removed by its path."""
    if results is not None:
        with contextlib.suppress(BaseException):
            results.close()
    if writer is not None:
        with contextlib.suppress(BaseException):
            writer.close()
    for path, table in tables.items():
        if table is not None:
            table.abort()
        else:
            with contextlib.suppress(OSError):
                partial_path(path).unlink(missing_ok=True)


def _checked_paths(input: str | Path, output: str | Path, quarantine: str | Path | None, chunk_rows: int,
                   workers: int, engine: str) -> tuple[Path, Path, list[Path]]:
    """The job's arguments checked before anything is read: output, quarantine and the input files."""
    if chunk_rows < 1:
        raise ShipmlError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    if workers < 1:
        raise ShipmlError(f"--workers must be at least 1, got {workers}")
    if engine not in ("local", "dask"):
        raise ShipmlError(f"unknown engine '{engine}'; choose local or dask")
    output = Path(output)
    quarantine = Path(quarantine) if quarantine else default_quarantine_path(output)
    table_format(output)
    table_format(quarantine)
    files = input_files(input)
    if output.resolve() in {p.resolve() for p in files} or quarantine.resolve() == output.resolve():
        raise ShipmlError(f"{output}: output would overwrite an input or the quarantine file; choose another name")
    return output, quarantine, files


def _write_all(results: Iterator[ChunkResult], writer: WriterThread, out: AtomicTable, bad: AtomicTable,
               summary: BatchSummary, total: int, progress: bool, on_chunk: Callable[[int], None] | None,
               on_result: Callable[[ChunkResult], None] | None = None) -> float:
    """Queue every chunk's rows on the writer thread and count them in ``summary``; return the peak RSS in MB.
    ``on_result`` sees each chunk's scored rows (the prediction log)."""
    from tqdm.auto import tqdm

    peak = _rss_mb()
    with tqdm(total=total, unit="rows", unit_scale=True, disable=not progress,
              desc=f"score {summary.model} v{summary.model_version}", mininterval=0.5) as bar:
        for result in results:
            writer.write(out, result.scored)
            if on_result is not None and result.scored.num_rows:
                on_result(result)
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
    return peak


@functools.cache
def _process(pid: int) -> Any:
    import psutil

    return psutil.Process(pid)  # made once per process: creating one reads /proc (ms, every chunk otherwise)


def _rss_mb() -> float:
    return _process(os.getpid()).memory_info().rss / 2**20
