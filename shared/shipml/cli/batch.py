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
    prediction_log: Path = typer.Option(None, "--prediction-log",
                                        help="also log every scored row with its features here (monitoring)"),
) -> None:
    """Score INPUT with MODEL into OUTPUT; invalid rows go to the quarantine file with the reason."""
    from shipml import batch

    log = None
    if prediction_log is not None:  # monitoring: the same Parquet log the server writes
        from shipml.monitoring.predlog import PredictionLog
        from shipml.predictor import load_predictor

        log = PredictionLog(prediction_log, load_predictor(model).schema)

    if scheduler and engine != "dask":
        engine = "dask"

    def stop(signum: int, frame: object) -> None:  # SIGTERM: clean up the partial files, like Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        summary = batch.score(model, input, output, quarantine, chunk_rows=chunk_rows, engine=engine,
                              scheduler=scheduler, workers=workers, progress=progress, prediction_log=log)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if log is not None:
            stats = log.close()
            typer.echo(f"prediction log: {stats.written:,} rows -> {prediction_log}")
    typer.echo(str(summary))
