"""``create_app(settings)``: the kit's model server, a FastAPI app over a model repository.

What happens when:

* ``create_app`` builds routes, middleware and metrics; it loads nothing (importing this module or
  calling the factory never touches the repository);
* the **lifespan** opens the repository, loads every version in a worker thread (liveness answers at
  once, readiness only once models are loaded), limits the model to ``model_threads`` threads, and
  keeps polling the repository every ``poll_seconds`` so a new version is served without a restart;
* each request: :class:`~shipml.serving.middleware.ServingMiddleware` (request id, API key, size limit,
  metrics, logs), then the route, which gets the repository and metrics injected as dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipml import __version__
from shipml.serving import routes_predict, routes_tfserving, routes_v2
from shipml.serving.auth import guard_options
from shipml.serving.deps import MetricsDep
from shipml.serving.docs import add_docs, build_openapi
from shipml.serving.errors import ApiError
from shipml.serving.logs import configure_logging
from shipml.serving.metrics import Metrics
from shipml.serving.middleware import ServingMiddleware
from shipml.serving.repository import ModelRepository
from shipml.settings import Settings

log = logging.getLogger("shipml.serving")


def limit_model_threads(n: int) -> None:
    """One thread per worker for BLAS and OpenMP, set in the thread that runs the models (the loop's)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)


async def _keep_loaded(app: FastAPI, repo: ModelRepository, settings: Settings) -> None:
    """Load the repository, then check it every ``poll_seconds`` (a few ``scandir`` calls when unchanged)."""
    while True:
        try:
            changed = await asyncio.to_thread(repo.refresh)
            if changed:
                limit_model_threads(settings.model_threads)  # newly imported libraries start unlimited
                app.state.openapi_cache = None
        except Exception:
            log.exception("model repository check failed")
        if settings.poll_seconds <= 0 and repo.loaded_once:
            return
        await asyncio.sleep(settings.poll_seconds or 1.0)


def _error_body(request: Request, status: int, message: str, detail: list | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if detail:
        body["detail"] = detail
    body["request_id"] = request.scope.get("shipml.request_id")
    return JSONResponse(body, status_code=status)


def fast_routes(app: FastAPI) -> dict[tuple[str, str], tuple[Any, Any]]:
    """``(method, path) -> (route, ASGI handler)`` for the hot routes (:class:`routes_predict.LeanRoute`).

    The middleware sends these straight to their handler: FastAPI's router and dependency solving cost
    more per request than the model. The routes stay registered, so OpenAPI documents them and any
    other path still goes through the router. Errors are rendered here like the app's handlers do.
    """
    table: dict[tuple[str, str], tuple[Any, Any]] = {}
    for route in routes_predict.router.routes:  # included as-is (no prefix) by create_app
        if not isinstance(route, routes_predict.LeanRoute):
            continue
        endpoint = route.endpoint

        async def handler(scope: dict, receive: Any, send: Any, endpoint: Any = endpoint) -> None:
            request = Request(scope, receive)
            try:
                response = await endpoint(request)
            except ApiError as exc:
                response = _error_body(request, exc.status, exc.message, exc.detail)
            await response(scope, receive, send)

        for method in route.methods:
            table[(method, route.path)] = (route, handler)
    return table


def create_app(settings: Settings | None = None) -> FastAPI:
    """A model server over ``settings.models`` (default: ``Settings()`` read from ``SHIPML_*`` variables)."""
    settings = settings or Settings()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        limit_model_threads(settings.model_threads)
        repo = ModelRepository(settings.models, settings.default_model, settings.max_batch_rows,
                               trusted_keys=settings.trusted_keys)
        repo.listeners.append(metrics.models_changed)
        app.state.repository = repo
        log.info("model server starting", extra={"models": str(settings.models), "version": __version__})
        task = asyncio.create_task(_keep_loaded(app, repo, settings))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            app.state.repository = None
            log.info("model server stopped")

    app = FastAPI(title="shipml model server", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.repository = None

    app.include_router(routes_predict.router)
    app.include_router(routes_tfserving.router)
    app.include_router(routes_v2.router)

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def prometheus_metrics(m: MetricsDep) -> Response:
        """Requests by route and status, latency histogram, predictions by class, loaded model versions."""
        return Response(m.render(), media_type=m.content_type)

    add_docs(app)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_body(request, exc.status, exc.message, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts, detail = [], []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ())]
            where = ".".join(loc[1:] if len(loc) > 1 else loc) or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
            detail.append({"loc": loc, "msg": err.get("msg", ""), "type": err.get("type", "")})
        return _error_body(request, 422, "; ".join(parts), detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        response = _error_body(request, exc.status_code, message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    app.add_middleware(ServingMiddleware, metrics=metrics, api_key=None, **guard_options(settings),
                       max_request_bytes=settings.max_request_bytes, access_log=settings.access_log,
                       slow_request_ms=settings.slow_request_ms, fast_routes=fast_routes(app))
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["content-type", "x-api-key", "authorization", "x-request-id"],
                           expose_headers=["x-request-id"])
    return app
