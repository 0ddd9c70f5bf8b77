"""``shipml batch score``: stream a file or folder through a model bundle (see :mod:`shipml.batch`)."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

app = typer.Typer(help="Batch scoring: files in, predictions out, bad rows quarantined.", no_args_is_help=True)


@app.command("score")
def score(
    model: Path = typer.Option(..., "--model", help="model bundle folder (sklearn or onnx backend)"),
    input: Path = typer.Option(..., "--input", help="a .csv or .parquet file, or a folder of them"),
    output: Path = typer.Option(..., "--output", help="scores to write: .parquet or .csv"),
    quarantine: Path = typer.Option(None, "--quarantine",
                                    help="where rows that fail validation go (default OUTPUT.quarantine.csv)"),
    engine: str = typer.Option("local", "--engine", help="local (this process) or dask"),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address (default: a LocalCluster)"),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", help="rows per chunk (memory grows with it)"),
    workers: int = typer.Option(2, "--workers",
                                help="scoring threads (local) or worker processes (embedded Dask cluster)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Score INPUT with MODEL into OUTPUT; invalid rows go to the quarantine file with the reason."""
    from shipml import batch

    if scheduler and engine != "dask":
        engine = "dask"

    def stop(signum: int, frame: object) -> None:  # SIGTERM: clean up the partial files, like Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        summary = batch.score(model, input, output, quarantine, chunk_rows=chunk_rows, engine=engine,
                              scheduler=scheduler, workers=workers, progress=progress)
    finally:
        signal.signal(signal.SIGTERM, previous)
    typer.echo(str(summary))
