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

One module per concern:

==================  ================================================================================
``reading``         input files, preflight checks, CSV/Parquet chunks, the read-ahead thread
``scoring``         one chunk → predictions and quarantine rows (what both engines run)
``writing``         atomic output files and the writer thread
``engine``          :func:`score` (the job, its progress bar) and :class:`BatchSummary`
``local``           the local engine (a thread pool) and :func:`in_order`, which both engines use
``scaleout``        the Dask engine
``measure``         wall time and peak memory of a command in its own process (notebook, benchmark)
==================  ================================================================================
"""

from shipml.batch.engine import BatchSummary, score
from shipml.batch.reading import (
    CSV_BLOCK_BYTES,
    DEFAULT_CHUNK_ROWS,
    Chunk,
    input_files,
    iter_chunks,
    preflight,
    total_rows,
)
from shipml.batch.scoring import OUTPUT_COLUMNS, ChunkResult, score_chunk
from shipml.batch.writing import default_quarantine_path

__all__ = [
    "CSV_BLOCK_BYTES",
    "DEFAULT_CHUNK_ROWS",
    "OUTPUT_COLUMNS",
    "BatchSummary",
    "Chunk",
    "ChunkResult",
    "default_quarantine_path",
    "input_files",
    "iter_chunks",
    "preflight",
    "score",
    "score_chunk",
    "total_rows",
]
