"""Run the server under uvicorn: what ``shipml serve`` does (settings from ``SHIPML_*``, flags win)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from shipml.errors import ShipmlError

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_server(models: str | Path, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Start uvicorn in this process (blocks until stopped). Writes nothing outside /tmp."""
    import uvicorn

    from shipml.serving.logs import uvicorn_log_config
    from shipml.settings import Settings

    models = Path(models)
    if not models.is_dir():
        raise ShipmlError(f"{models}: no such model repository folder (expected <name>/<version>/ bundles)")
    os.environ["SHIPML_MODELS"] = str(models.resolve())
    settings = Settings()
    # Before any model library is imported: one thread per worker for OpenMP and BLAS.
    for var in THREAD_VARIABLES:
        os.environ.setdefault(var, str(settings.model_threads))
    tls = tls_options(settings)  # fails before anything is made when the pair is incomplete
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # each worker is a process: metrics are added up through files under /tmp, removed at the end
        metrics_dir = tempfile.mkdtemp(prefix="shipml-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    loop = "uvloop" if _importable("uvloop") else "asyncio"
    http: object = "h11"
    if _importable("httptools"):
        from shipml.serving.protocol import HeaderTimeoutProtocol

        http = HeaderTimeoutProtocol
    try:
        uvicorn.run("shipml.serving.app:create_app", factory=True, host=host, port=port, workers=workers,
                    loop=loop, http=http, log_config=uvicorn_log_config(settings.log_level), access_log=False,
                    server_header=False, proxy_headers=False, timeout_graceful_shutdown=5,
                    timeout_keep_alive=settings.keepalive_seconds, **tls)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def tls_options(settings) -> dict[str, str]:
    """uvicorn's ``ssl_certfile``/``ssl_keyfile`` from ``SHIPML_TLS_CERT``/``SHIPML_TLS_KEY`` (both or neither)."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise ShipmlError("HTTPS needs both SHIPML_TLS_CERT and SHIPML_TLS_KEY (make a local pair with "
                          "'shipml tls cert')")
    for p in (cert, key):
        if not Path(p).is_file():
            raise ShipmlError(f"{p}: no such file (SHIPML_TLS_CERT / SHIPML_TLS_KEY)")
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
