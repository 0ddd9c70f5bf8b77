"""Scale-out: the same chunk scoring on a Dask cluster (``dask.distributed``).

The driver (this process) streams the input exactly as the local engine does and keeps at most a few
chunks in flight per worker; each worker loads the bundle once (hashes verified there too) and runs
:func:`shipml.batch.scoring.score_chunk`; results come back **in input order** and the driver writes them with
the same atomic writer. So the output is identical to the local engine's, row for row.

By default an embedded ``LocalCluster`` (worker processes on this machine) is started and stopped
around the job; ``scheduler="tcp://host:8786"`` sends the work to an existing cluster instead. Workers
load the bundle from the same path, so on a real cluster it must sit on storage every worker sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from shipml.batch.local import in_order
from shipml.errors import ShipmlError

_PREDICTORS: dict[str, Any] = {}  # per worker process: bundle path -> loaded predictor


def _score_on_worker(bundle: str, chunk: Any) -> Any:
    from shipml.batch.scoring import score_chunk
    from shipml.predictor import load_predictor

    predictor = _PREDICTORS.get(bundle)
    if predictor is None:
        predictor = _PREDICTORS[bundle] = load_predictor(bundle)
    return score_chunk(predictor, chunk)


def dask_results(bundle: str | Path, chunks: Iterator[Any], *, scheduler: str | None = None, workers: int = 2,
                 in_flight_per_worker: int = 2) -> Iterator[Any]:
    """Submit every chunk to Dask; yield the :class:`~shipml.batch.scoring.ChunkResult` s in input order."""
    from dask.distributed import Client, LocalCluster

    with ExitStack() as stack:
        try:
            if scheduler:
                client = stack.enter_context(Client(scheduler, timeout="10s"))
            else:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=40))
                client = stack.enter_context(Client(cluster))
        except (OSError, TimeoutError) as exc:
            raise ShipmlError(f"cannot reach the Dask scheduler {scheduler or '(local)'}: {exc}") from None
        n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})) or workers)
        limit = max(2, n_workers * in_flight_per_worker)
        bundle = str(Path(bundle).resolve()) if not scheduler else str(bundle)
        yield from in_order(lambda chunk: client.submit(_score_on_worker, bundle, chunk, pure=False), chunks,
                            in_flight=limit)
