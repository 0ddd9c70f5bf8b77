"""``POST /predict`` (one record) and ``POST /predict/batch`` (a bounded list): the kit's own API.

Also what every prediction route shares (:class:`LeanRoute`, :func:`lean_route`, :func:`predict_columns`):
the body is read as bytes (:func:`shipml.serving.body.read_body`) and validated in one step by the
model's compiled pydantic ``TypeAdapter`` (parse and check together, in Rust); the answer is serialised
by pydantic-core. :func:`predict_columns` is the one place a request is scored: it counts the
predictions and hands the completed prediction to the extensions' hooks (:mod:`shipml.serving.hooks`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic_core import to_json
from starlette.convertors import Convertor, register_url_convertor

from shipml.serving.body import read_body
from shipml.serving.deps import Repository, get_repository
from shipml.serving.errors import ApiError
from shipml.serving.repository import ServedModel
from shipml.serving.schemas import ERROR_RESPONSES, BatchResponse, PredictResponse


class ModelNameConvertor(Convertor):
    """A model name in a path: no ``/`` and no ``:`` (so ``fraud:classify`` is a verb, not a name)."""

    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model", ModelNameConvertor())


class LeanRoute(APIRoute):
    """An ``APIRoute`` that calls its endpoint with the bare :class:`Request`.

    FastAPI resolves a route's declared parameters and dependencies on every request (about 50 µs
    here, more than onnxruntime needs for a row). The prediction routes keep a declared signature for
    the OpenAPI schema, but their handler reads path and query itself; the middleware dispatches them
    without the router (:meth:`shipml.serving.middleware.ServingMiddleware.dispatch`).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(request)

        return handler


NAME_P = inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                           default=Path(description="model name", max_length=200))
VERSION_P = inspect.Parameter("version", inspect.Parameter.KEYWORD_ONLY, annotation=int,
                              default=Path(description="model version", ge=0))


def lean_route(router: APIRouter, paths: Sequence[str], endpoint: Callable[[Request], Any], **kwargs: Any) -> None:
    """Register one handler ``endpoint(request)`` under each path (with and without ``/versions/{version}``).

    The signature FastAPI documents is built from the path: ``name`` and ``version`` path parameters.
    """
    for path in paths:
        params = [p for p, key in ((NAME_P, "{name"), (VERSION_P, "{version")) if key in path]

        async def documented(request: Request, endpoint: Any = endpoint) -> Response:
            return await endpoint(request)

        documented.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request), *params])
        documented.__name__ = endpoint.__name__ + ("_version" if "{version" in path else "")
        documented.__doc__ = endpoint.__doc__
        router.add_api_route(path, documented, methods=["POST"], route_class_override=LeanRoute,
                             responses=ERROR_RESPONSES, **kwargs)


def versioned_get(router: APIRouter, paths: Sequence[str], endpoint: Callable[..., Any], **kwargs: Any) -> None:
    """Register ``endpoint(name, repo, version)`` for GET and HEAD at a path and its ``/versions/{version}`` twin.

    One handler; on the unversioned path it is documented without ``version`` and called with ``None``.
    """
    for path in paths:
        if "{version" in path:
            handler = endpoint
        else:
            async def handler(name: str, repo: Repository, endpoint: Any = endpoint) -> Any:
                return await endpoint(name, repo, None)

            handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
                [p for p in inspect.signature(endpoint).parameters.values() if p.name != "version"])
            handler.__name__, handler.__doc__ = endpoint.__name__, endpoint.__doc__
        get_and_head(router, path, responses=ERROR_RESPONSES,
                     name=endpoint.__name__ + ("_version" if "{version" in path else ""), **kwargs)(handler)


def get_and_head(router: APIRouter | FastAPI, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """Decorator: the handler answers GET (documented) and HEAD (probes, ``curl -I``; kept out of the schema,
    where one route with both methods would be two operations with one operation id)."""
    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        router.add_api_route(path, endpoint, methods=["GET"], **kwargs)
        head = {**kwargs, "include_in_schema": False, "name": kwargs.get("name", endpoint.__name__) + "_head"}
        router.add_api_route(path, endpoint, methods=["HEAD"], **head)
        return endpoint
    return register


def served_model(request: Request, repo: Any) -> ServedModel:
    """The model a ``{name}[/versions/{version}]`` route names (no version: a rollout may choose it)."""
    params = request.path_params
    version = params.get("version")
    rollouts = getattr(request.app.state, "rollouts", None)
    if version is None and rollouts is not None:
        return rollouts.choose(request, repo, params["name"])
    return repo.get(params["name"], version)


async def score_columns(served: ServedModel, columns: dict[str, list[Any]]) -> tuple[list[list[float]], list[int]]:
    """Probabilities and class indices of valid columns (one row: the predictor's one-row path)."""
    n = len(columns[served.codec.names[0]])
    if n == 1:
        one, i = await served.score_one_async({k: v[0] for k, v in columns.items()})
        return [one], [i]
    p, idx = await served.score_async(columns)
    return p.tolist(), idx.tolist()


async def predict_columns(request: Request, served: ServedModel, columns: dict[str, list[Any]]
                          ) -> tuple[list[list[float]], list[int]]:
    """Score valid columns, count them, publish the completed prediction.

    Under a rollout (:mod:`shipml.serving.rollout`) the side the request was routed to scores it, so
    each version's errors, latency and scores are recorded (and the shadow candidate scores it too)."""
    arm = request.scope.get("shipml.rollout")
    if arm is None:
        proba, index = await score_columns(served, columns)
    else:
        proba, index = await arm.score(request.scope.get("shipml.request_id", ""), served, columns, score_columns)
    state = request.app.state
    state.metrics.count_predictions(served.name, served.version, served.class_names, index)
    if state.prediction_hooks:
        route = request.scope.get("route")
        state.prediction_hooks.publish(request.scope.get("shipml.request_id", ""), getattr(route, "path_format", ""),
                                       served, columns, proba, index)
    return proba, index


router = APIRouter(tags=["predict"], route_class=LeanRoute)

MODEL_Q = Query(None, description="model name (default: the server's default model)", max_length=200)
VERSION_Q = Query(None, ge=0, description="model version (default: the highest that proved it can score, or "
                                          "the one a rollout pins)")


async def pick_model(request: Request) -> ServedModel:
    """The model ``/predict`` serves: ``?model=`` and ``?version=`` when given, else the default."""
    repo = await get_repository(request)
    rollouts = getattr(request.app.state, "rollouts", None)
    if not request.scope["query_string"]:
        served = repo.default()
        return served if rollouts is None else rollouts.choose(request, repo, served.name)
    query = request.query_params
    name, version = query.get("model"), query.get("version")
    unknown = sorted(set(query) - {"model", "version"})
    if unknown:
        raise ApiError(422, f"unknown query parameter(s) {unknown}; use model and version")
    if version is not None and not version.isdigit():
        raise ApiError(422, f"version: must be a whole number, got {version[:40]!r}")
    if version is None and rollouts is not None:
        return rollouts.choose(request, repo, name or repo.default().name)
    return repo.get(name or repo.default().name, version)


def rows_payload(model: ServedModel, proba: list[list[float]], index: list[int]) -> list[dict[str, Any]]:
    """One dict per row: label, class name, its probability and every class's probability."""
    names, labels = model.class_names, model.class_labels
    return [{"prediction": labels[i], "class_name": names[i], "probability": row[i],
             "probabilities": dict(zip(names, row, strict=True))} for row, i in zip(proba, index, strict=True)]


@router.post("/predict", response_model=PredictResponse, responses=ERROR_RESPONSES,
             openapi_extra={"x-shipml-body": "record"}, summary="Predict one record")
async def predict(request: Request, model: str | None = MODEL_Q, version: int | None = VERSION_Q) -> Response:
    """Score one transaction. The body is one record of the model's features (see the schema below)."""
    served = await pick_model(request)
    row = served.codec.decode_record(await read_body(request))
    (proba,), (i,) = await predict_columns(request, served, {k: [v] for k, v in row.items()})
    names = served.class_names
    body = {"prediction": served.class_labels[i], "class_name": names[i], "probability": proba[i],
            "probabilities": dict(zip(names, proba, strict=True)), "model": served.name,
            "version": served.version, "request_id": request.scope.get("shipml.request_id", "")}
    return Response(to_json(body), media_type="application/json")


@router.post("/predict/batch", response_model=BatchResponse, responses=ERROR_RESPONSES,
             openapi_extra={"x-shipml-body": "batch"}, summary="Predict a batch of records")
async def predict_batch(request: Request, model: str | None = MODEL_Q, version: int | None = VERSION_Q) -> Response:
    """Score 1 to ``SHIPML_MAX_BATCH_ROWS`` records sent as ``{"records": [...]}``."""
    served = await pick_model(request)
    columns = served.codec.decode_batch(await read_body(request))
    proba, index = await predict_columns(request, served, columns)
    body = {"model": served.name, "version": served.version,
            "request_id": request.scope.get("shipml.request_id", ""),
            "predictions": rows_payload(served, proba, index)}
    return Response(to_json(body), media_type="application/json")
