"""``POST /predict`` (one record) and ``POST /predict/batch`` (a bounded list): the kit's own API.

The hot path: the body is read as bytes and validated in one step by the model's compiled pydantic
``TypeAdapter`` (``validate_json``: parse and check together, in Rust), scored in the event loop
thread (one model thread per worker: a hop to a thread pool would cost more than the model), and the
answer is serialised by pydantic-core. The OpenAPI schema still declares the generated request model
(see :mod:`shipml.serving.openapi`), so the docs and clients see exactly what is validated.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic_core import to_json

from shipml.serving.deps import get_metrics, get_repository
from shipml.serving.errors import ApiError
from shipml.serving.repository import ServedModel
from shipml.serving.schemas import ERROR_RESPONSES, BatchResponse, PredictResponse


class LeanRoute(APIRoute):
    """An ``APIRoute`` that calls its endpoint with the bare :class:`Request`.

    FastAPI resolves a route's declared parameters and dependencies on every request (about 50 µs
    here, more than onnxruntime needs for a row). The hot routes keep the declared signature for the
    OpenAPI schema, but their handler reads the query string itself and gets the repository and metrics
    from the same dependency functions the other routes use, called directly.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(request)

        return handler


router = APIRouter(tags=["predict"], route_class=LeanRoute)

MODEL_Q = Query(None, description="model name (default: the server's default model)", max_length=200)
VERSION_Q = Query(None, description="model version (default: the highest)", ge=0)


async def pick_model(request: Request) -> ServedModel:
    """The model a hot route serves: ``?model=`` and ``?version=`` when given, else the default."""
    repo = await get_repository(request)
    if not request.scope["query_string"]:
        return repo.default()
    query = request.query_params
    name, version = query.get("model"), query.get("version")
    unknown = sorted(set(query) - {"model", "version"})
    if unknown:
        raise ApiError(422, f"unknown query parameter(s) {unknown}; use model and version")
    if version is not None and not version.isdigit():
        raise ApiError(422, f"version: must be a whole number, got {version[:40]!r}")
    return repo.get(name or repo.default().name, version)


def rows_payload(model: ServedModel, proba: np.ndarray, index: np.ndarray) -> list[dict[str, Any]]:
    """One dict per row: label, class name, its probability and every class's probability."""
    names, labels = model.class_names, model.class_labels
    out = []
    for row, i in zip(proba.tolist(), index.tolist(), strict=True):
        out.append({"prediction": labels[i], "class_name": names[i], "probability": row[i],
                    "probabilities": dict(zip(names, row, strict=True))})
    return out


@router.post("/predict", response_model=PredictResponse, responses=ERROR_RESPONSES,
             openapi_extra={"x-shipml-body": "record"}, summary="Predict one record")
async def predict(request: Request, model: str | None = MODEL_Q, version: int | None = VERSION_Q) -> Response:
    """Score one transaction. The body is one record of the model's features (see the schema below)."""
    served = await pick_model(request)
    metrics = await get_metrics(request)
    row = served.codec.decode_record(await request.body())
    proba, i = served.score_one(row)
    metrics.count_one(served.name, served.version, served.class_names, i)
    names = served.class_names
    body = {"prediction": served.class_labels[i], "class_name": names[i], "probability": proba[i],
            "probabilities": dict(zip(names, proba, strict=True)), "model": served.name,
            "version": served.version, "request_id": request.scope.get("shipml.request_id", "")}
    if request.app.state.monitor is not None:  # monitoring hook: a completed prediction
        request.app.state.monitor.record_one(served, body["request_id"], row, proba, i)
    return Response(to_json(body), media_type="application/json")


@router.post("/predict/batch", response_model=BatchResponse, responses=ERROR_RESPONSES,
             openapi_extra={"x-shipml-body": "batch"}, summary="Predict a batch of records")
async def predict_batch(request: Request, model: str | None = MODEL_Q, version: int | None = VERSION_Q) -> Response:
    """Score 1 to ``SHIPML_MAX_BATCH_ROWS`` records sent as ``{"records": [...]}``."""
    served = await pick_model(request)
    metrics = await get_metrics(request)
    columns = served.codec.decode_batch(await request.body())
    proba, index = served.score(columns)
    metrics.count_predictions(served.name, served.version, served.class_names, index)
    body = {"model": served.name, "version": served.version,
            "request_id": request.scope.get("shipml.request_id", ""),
            "predictions": rows_payload(served, proba, index)}
    if request.app.state.monitor is not None:  # monitoring hook: completed predictions
        request.app.state.monitor.record_batch(served, body["request_id"], columns, proba, index)
    return Response(to_json(body), media_type="application/json")
