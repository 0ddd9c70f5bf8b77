"""``POST /predict`` (one record) and ``POST /predict/batch`` (a bounded list): the kit's own API.

The hot path: the body is read as bytes and validated in one step by the model's compiled pydantic
``TypeAdapter`` (``validate_json``: parse and check together, in Rust), scored in the event loop
thread (one model thread per worker: a hop to a thread pool would cost more than the model), and the
answer is serialised by pydantic-core. The OpenAPI schema still declares the generated request model
(see :mod:`shipml.serving.openapi`), so the docs and clients see exactly what is validated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from pydantic_core import to_json

from shipml.serving.deps import MetricsDep, Repository
from shipml.serving.repository import ServedModel
from shipml.serving.schemas import ERROR_RESPONSES, BatchResponse, PredictResponse

router = APIRouter(tags=["predict"])

MODEL_Q = Query(None, description="model name (default: the server's default model)", max_length=200)
VERSION_Q = Query(None, description="model version (default: the highest)", ge=0)


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
async def predict(request: Request, repo: Repository, metrics: MetricsDep,
                  model: str | None = MODEL_Q, version: int | None = VERSION_Q) -> Response:
    """Score one transaction. The body is one record of the model's features (see the schema below)."""
    served = repo.get(model, version) if model else (repo.default() if version is None else
                                                     repo.get(repo.default().name, version))
    columns = served.codec.decode_record(await request.body())
    proba, index = served.score(columns)
    metrics.count_predictions(served.name, served.version, served.class_names, index)
    body = rows_payload(served, proba, index)[0]
    body["model"], body["version"] = served.name, served.version
    body["request_id"] = request.scope.get("shipml.request_id", "")
    return Response(to_json(body), media_type="application/json")


@router.post("/predict/batch", response_model=BatchResponse, responses=ERROR_RESPONSES,
             openapi_extra={"x-shipml-body": "batch"}, summary="Predict a batch of records")
async def predict_batch(request: Request, repo: Repository, metrics: MetricsDep,
                        model: str | None = MODEL_Q, version: int | None = VERSION_Q) -> Response:
    """Score 1 to ``SHIPML_MAX_BATCH_ROWS`` records sent as ``{"records": [...]}``."""
    served = repo.get(model, version) if model else (repo.default() if version is None else
                                                     repo.get(repo.default().name, version))
    columns = served.codec.decode_batch(await request.body())
    proba, index = served.score(columns)
    metrics.count_predictions(served.name, served.version, served.class_names, index)
    body = {"model": served.name, "version": served.version,
            "request_id": request.scope.get("shipml.request_id", ""),
            "predictions": rows_payload(served, proba, index)}
    return Response(to_json(body), media_type="application/json")
