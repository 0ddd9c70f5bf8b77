"""The local engine: chunks scored on a thread pool in this process, results in input order.

Both engines (this one and :mod:`shipml.batch.scaleout`, the Dask one) keep a bounded number of chunks
in flight and hand results back in input order with :func:`in_order`, so they write the same output.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shipml.batch.reading import Chunk, prefetch
from shipml.batch.scoring import ChunkResult, score_chunk
from shipml.predictor import Predictor


def scoring_pool(workers: int, threads: int | None, controller: Any = None) -> ThreadPoolExecutor:
    """``workers`` threads whose model thread pools are capped at ``threads`` each.

    The cap has to be set in each thread: OpenMP keeps the thread count per calling thread, so a limit
    set in the main thread does not reach the pool (and two scorers would each start two OpenMP threads).
    ``controller`` is a ``threadpoolctl.ThreadpoolController`` to reuse (finding the libraries takes ~10 ms).
    """
    def cap() -> None:
        if threads:
            from threadpoolctl import ThreadpoolController

            # lasts as long as the thread; the job restores the process-wide (BLAS) limits at the end
            (controller or ThreadpoolController()).limit(limits=threads)

    return ThreadPoolExecutor(max(1, workers), thread_name_prefix="shipml-batch-score", initializer=cap)


def in_order(submit: Callable[[Any], Any], items: Iterable[Any], in_flight: int) -> Iterator[Any]:
    """``submit(item)`` for each item, at most ``in_flight`` at once; yield the futures' results in input order."""
    pending: deque = deque()
    try:
        for item in items:
            pending.append(submit(item))
            while len(pending) >= in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def local_results(predictor: Predictor, chunks: Iterator[Chunk], workers: int, threads: int | None,
                  controller: Any = None, keep_features: bool = False) -> Iterator[ChunkResult]:
    """Score chunks on a thread pool while a reader thread reads the next ones; results in input order.

    The reader never waits for a result (it would leave a scorer idle while it parses the next chunk):
    it reads ahead, and one chunk more than there are scorers waits in the pool's queue.
    """
    if workers <= 1:  # one scorer: this thread scores
        yield from (score_chunk(predictor, c, keep_features) for c in prefetch(chunks))
        return
    pool = scoring_pool(workers, threads, controller)
    try:
        yield from in_order(lambda c: pool.submit(score_chunk, predictor, c, keep_features), prefetch(chunks),
                            in_flight=workers + 1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
