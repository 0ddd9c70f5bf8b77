"""``create_app(settings)``: the kit's model server, a FastAPI app over a model repository.

What happens when:

* ``create_app`` builds routes, error handlers, middleware and metrics, and installs the extensions
  (:mod:`shipml.serving.hooks`); it loads nothing (importing this module or calling the factory never
  touches the repository);
* the **lifespan** opens the repository, loads every version in a worker thread (liveness answers at
  once, readiness only once every model is loaded), starts the extensions, and keeps polling the
  repository every ``poll_seconds`` so a new version is served without a restart;
* each request: :class:`~shipml.serving.middleware.ServingMiddleware` (request id, API key, rate limit,
  size limit, metrics, logs), then the route. scikit-learn models score in the ``shipml-model`` thread, so the
  event loop keeps answering health checks and metrics while they work.

``app.state`` holds: ``settings``, ``metrics``, ``repository`` (None until the lifespan opens it),
``extensions`` (name to extension), ``prediction_hooks``, ``components`` (anything an extension adds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipml import __version__
from shipml.serving import routes_predict, routes_tfserving, routes_v2
from shipml.serving.auth import guard_options
from shipml.serving.deps import MetricsDep
from shipml.serving.docs import add_docs, build_openapi
from shipml.serving.errors import ApiError, error_response, from_api_error
from shipml.serving.hooks import PredictionHooks, default_extensions
from shipml.serving.logs import configure_logging
from shipml.serving.metrics import Metrics, worker_stopped
from shipml.serving.middleware import ServingMiddleware, flat_routes
from shipml.serving.repository import ModelRepository
from shipml.settings import Settings

log = logging.getLogger("shipml.serving")


def limit_model_threads(n: int) -> None:
    """``n`` threads for BLAS and OpenMP, set in the thread that runs the models."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)


async def _keep_loaded(app: FastAPI, repo: ModelRepository, settings: Settings) -> None:
    """Load the repository, then check it every ``poll_seconds`` (a few ``scandir`` calls when unchanged)."""
    executor = app.state.model_executor
    loop = asyncio.get_running_loop()
    while True:
        try:
            changed = await asyncio.to_thread(repo.refresh)
            if changed:  # newly imported libraries start unlimited
                limit_model_threads(settings.model_threads)
                await loop.run_in_executor(executor, limit_model_threads, settings.model_threads)
                app.state.openapi_cache = None
        except Exception:
            log.exception("model repository check failed")
        if settings.poll_seconds <= 0 and repo.loaded_once:
            return
        await asyncio.sleep(settings.poll_seconds or 1.0)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the repository and keep it loaded; start and stop the extensions around it."""
    settings: Settings = app.state.settings
    configure_logging(settings.log_level)
    limit_model_threads(settings.model_threads)
    executor = ThreadPoolExecutor(1, thread_name_prefix="shipml-model", initializer=limit_model_threads,
                                  initargs=(settings.model_threads,))
    app.state.model_executor = executor
    repo = ModelRepository(settings.models, settings.default_model, settings.max_batch_rows, executor=executor,
                           trusted_keys=settings.trusted_keys)
    repo.listeners.append(app.state.metrics.models_changed)
    app.state.repository = repo
    log.info("model server starting", extra={"models": str(settings.models), "version": __version__})
    task = asyncio.create_task(_keep_loaded(app, repo, settings))
    started = []
    try:
        for ext in app.state.extensions.values():
            if hasattr(ext, "startup"):
                await ext.startup(app)
            started.append(ext)
        yield
    finally:
        for ext in reversed(started):
            if hasattr(ext, "shutdown"):
                try:
                    await ext.shutdown(app)
                except Exception:
                    log.exception("extension failed to stop", extra={"extension": _name(ext)})
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        executor.shutdown(wait=True, cancel_futures=True)
        app.state.repository = None
        worker_stopped()
        log.info("model server stopped")


def _name(ext: Any) -> str:
    return str(getattr(ext, "name", type(ext).__name__))


def add_routes(app: FastAPI) -> None:
    """The three protocols, ``/metrics`` and ``/docs``."""
    app.include_router(routes_predict.router)
    app.include_router(routes_tfserving.router)
    app.include_router(routes_v2.router)

    @routes_predict.get_and_head(app, "/metrics", tags=["operations"], response_class=Response,
                                 responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                                                  "description": "Prometheus text format"}})
    async def prometheus_metrics(m: MetricsDep) -> Response:
        """Requests by route and status, latency histogram, predictions by class, loaded model versions."""
        return Response(m.render(), media_type=m.content_type)

    add_docs(app)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal as :func:`~shipml.serving.errors.error_response` (one JSON shape)."""

    def rid(request: Request) -> str | None:
        return request.scope.get("shipml.request_id")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return from_api_error(exc, rid(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts, detail = [], []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            where = ".".join(loc[1:] if len(loc) > 1 else loc) or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
            detail.append({"loc": loc, "msg": err.get("msg", ""), "type": err.get("type", "")})
        return error_response(422, "; ".join(parts), rid(request), detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path[:200]} (see /docs)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path[:200]}"
        return error_response(exc.status_code, message, rid(request), headers=exc.headers)


def add_middleware(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """The serving middleware (innermost of the user middleware), then CORS when configured."""
    lean = [r for r in flat_routes(app.router.routes) if isinstance(r, routes_predict.LeanRoute)]
    # The most used first: /predict, then the standard protocols' v2 infer (TF Serving's routes are tried after it).
    lean.sort(key=lambda r: (r.path != "/predict", not r.path.startswith("/v2/")))
    app.add_middleware(ServingMiddleware, metrics=metrics, api_key=None, **guard_options(settings),
                       max_request_bytes=settings.max_request_bytes, access_log=settings.access_log,
                       slow_request_ms=settings.slow_request_ms, lean_routes=lean)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "HEAD", "POST"],
                           allow_headers=["content-type", "content-encoding", "x-api-key", "authorization",
                                          "x-request-id", "inference-header-content-length"],
                           expose_headers=["x-request-id"])


def create_app(settings: Settings | None = None, extensions: list[Any] | None = None) -> FastAPI:
    """A model server over ``settings.models`` (default: ``Settings()`` read from ``SHIPML_*`` variables).

    ``extensions`` (default: :func:`~shipml.serving.hooks.default_extensions`) are installed after the
    kit's middleware, so theirs run first (authentication before anything is read).
    """
    settings = settings or Settings()
    metrics = Metrics()
    app = FastAPI(title="shipml model server", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.repository = None
    app.state.components = {}
    app.state.prediction_hooks = hooks = PredictionHooks()
    add_routes(app)
    add_error_handlers(app)
    add_middleware(app, settings, metrics)
    chosen = default_extensions(settings) if extensions is None else list(extensions)
    app.state.extensions = {}
    for ext in chosen:
        app.state.extensions[_name(ext)] = ext
        if hasattr(ext, "install"):
            ext.install(app)
        if hasattr(ext, "on_prediction"):
            hooks.callbacks.append(ext.on_prediction)
    return app
