"""``shipml serve --models DIR``: the model server under uvicorn (uvloop + httptools when installed)."""

from __future__ import annotations

from pathlib import Path

import typer


def serve(
    models: Path = typer.Option(..., "--models", help="model repository: <name>/<version>/ bundle folders"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0 in a container)"),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="worker processes (one model thread each)"),
) -> None:
    """Serve every bundle under MODELS over HTTP: /predict, TF Serving's /v1, the v2 protocol, /metrics, /docs."""
    from shipml.serving.runner import run_server

    run_server(models, host=host, port=port, workers=workers)
