"""TensorFlow Serving's REST API over the same repository (so TF Serving clients and habits carry over).

=========================================================  ==========================================
``GET  /v1/models/{name}[/versions/{v}]``                   version status (``AVAILABLE``)
``GET  /v1/models/{name}[/versions/{v}]/metadata``          the signature: inputs and outputs
``POST /v1/models/{name}[/versions/{v}]:predict``           ``instances`` (rows) or ``inputs`` (columns)
=========================================================  ==========================================

Errors come back in TF Serving's shape, ``{"error": "..."}``, with a 4xx status.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic_core import to_json

from shipml.serving.deps import MetricsDep, Repository
from shipml.serving.errors import ApiError
from shipml.serving.repository import ServedModel
from shipml.serving.schemas import ERROR_RESPONSES, TFMetadataResponse, TFPredictResponse, TFStatusResponse

router = APIRouter(tags=["TensorFlow Serving REST API"])

_TF_DTYPES = {"float": "DT_DOUBLE", "int": "DT_INT64", "bool": "DT_BOOL", "category": "DT_STRING"}


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None


def tf_columns(payload: Any, served: ServedModel) -> tuple[dict[str, list[Any]], str]:
    """Columns from a TF Serving request body, and which format it used (``instances`` or ``inputs``)."""
    if not isinstance(payload, dict):
        raise ApiError(400, "the body must be a JSON object with 'instances' (rows) or 'inputs' (columns)")
    unknown = sorted(set(payload) - {"instances", "inputs", "signature_name"})
    if unknown:
        raise ApiError(400, f"unexpected key(s) {unknown}; use 'instances' or 'inputs' (and 'signature_name')")
    if ("instances" in payload) == ("inputs" in payload):
        raise ApiError(400, "send exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    names = served.codec.names
    limit = served.codec.max_rows
    if "instances" in payload:
        rows = payload["instances"]
        if not isinstance(rows, list) or not rows:
            raise ApiError(400, "'instances' must be a non-empty list of rows")
        if len(rows) > limit:
            raise ApiError(413, f"{len(rows)} instances; the limit is {limit} per request (SHIPML_MAX_BATCH_ROWS)")
        columns: dict[str, list[Any]] = {n: [] for n in names}
        for i, row in enumerate(rows):
            if isinstance(row, list):
                if len(row) != len(names):
                    raise ApiError(400, f"instance {i} has {len(row)} values; a row in list form needs "
                                        f"{len(names)}, in this order: {', '.join(names)}")
                row = dict(zip(names, row, strict=True))
            elif not isinstance(row, dict):
                raise ApiError(400, f"instance {i} must be an object (feature name to value) or a list")
            keys = set(row)
            if keys != set(names):
                missing, extra = sorted(set(names) - keys), sorted(keys - set(names))
                what = "; ".join(filter(None, [f"missing {missing}" if missing else "",
                                               f"unexpected {extra}" if extra else ""]))
                raise ApiError(400, f"instance {i}: {what}")
            for n in names:
                columns[n].append(row[n])
        return columns, "instances"
    inputs = payload["inputs"]
    if not isinstance(inputs, dict):
        raise ApiError(400, "'inputs' must be an object of feature name to a list of values (columnar format)")
    columns = {}
    for name, values in inputs.items():
        if not isinstance(values, list):
            raise ApiError(400, f"inputs['{str(name)[:80]}'] must be a list of values")
        if len(values) > limit:
            raise ApiError(413, f"{len(values)} rows; the limit is {limit} per request (SHIPML_MAX_BATCH_ROWS)")
        columns[name] = values
    return columns, "inputs"


def _status(served: list[ServedModel]) -> dict[str, Any]:
    return {"model_version_status": [
        {"version": str(m.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        for m in served]}


def _metadata(m: ServedModel) -> dict[str, Any]:
    def tensor(name: str, dtype: str, dims: list[int]) -> dict[str, Any]:
        return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(d), "name": ""} for d in dims],
                                                  "unknown_rank": False}, "name": name}

    inputs = {f.name: tensor(f.name, _TF_DTYPES[f.dtype], [-1]) for f in m.predictor.schema.features}
    outputs = {"label": tensor("label", "DT_INT64", [-1]), "class_name": tensor("class_name", "DT_STRING", [-1]),
               "probabilities": tensor("probabilities", "DT_DOUBLE", [-1, len(m.class_names)])}
    return {"model_spec": {"name": m.name, "signature_name": "", "version": str(m.version)},
            "metadata": {"signature_def": {"signature_def": {"serving_default": {
                "inputs": inputs, "outputs": outputs, "method_name": "tensorflow/serving/predict"}}}}}


@router.get("/v1/models/{name}", response_model=TFStatusResponse, responses=ERROR_RESPONSES)
async def tf_status(name: str, repo: Repository) -> dict[str, Any]:
    """Status of every version of a model."""
    return _status([repo.get(name, v) for v in repo.versions(name)])


@router.get("/v1/models/{name}/versions/{version}", response_model=TFStatusResponse, responses=ERROR_RESPONSES)
async def tf_version_status(name: str, version: int, repo: Repository) -> dict[str, Any]:
    """Status of one version."""
    return _status([repo.get(name, version)])


@router.get("/v1/models/{name}/metadata", response_model=TFMetadataResponse, responses=ERROR_RESPONSES)
async def tf_metadata(name: str, repo: Repository) -> dict[str, Any]:
    """The default version's signature: input and output tensors."""
    return _metadata(repo.get(name))


@router.get("/v1/models/{name}/versions/{version}/metadata", response_model=TFMetadataResponse,
            responses=ERROR_RESPONSES)
async def tf_version_metadata(name: str, version: int, repo: Repository) -> dict[str, Any]:
    """One version's signature."""
    return _metadata(repo.get(name, version))


async def _predict(request: Request, served: ServedModel, metrics: Any) -> Response:
    columns, fmt = tf_columns(parse_json(await request.body()), served)
    valid = served.codec.check_columns(columns)
    proba, index = served.score(valid)
    metrics.count_predictions(served.name, served.version, served.class_names, index)
    labels = np.asarray(served.class_labels)[index].tolist()
    names = [served.class_names[i] for i in index.tolist()]
    if fmt == "instances":
        body: dict[str, Any] = {"predictions": [
            {"label": lab, "class_name": cn, "probabilities": p}
            for lab, cn, p in zip(labels, names, proba.tolist(), strict=True)]}
    else:
        body = {"outputs": {"label": labels, "class_name": names, "probabilities": proba.tolist()}}
    return Response(to_json(body), media_type="application/json")


@router.post("/v1/models/{name}:predict", response_model=TFPredictResponse, responses=ERROR_RESPONSES,
             openapi_extra={"x-shipml-body": "tf"})
async def tf_predict(name: str, request: Request, repo: Repository, metrics: MetricsDep) -> Response:
    """Predict with the default (highest) version: ``{"instances": [...]}`` or ``{"inputs": {...}}``."""
    return await _predict(request, repo.get(name), metrics)


@router.post("/v1/models/{name}/versions/{version}:predict", response_model=TFPredictResponse,
             responses=ERROR_RESPONSES, openapi_extra={"x-shipml-body": "tf"})
async def tf_version_predict(name: str, version: int, request: Request, repo: Repository,
                             metrics: MetricsDep) -> Response:
    """Predict with one version."""
    return await _predict(request, repo.get(name, version), metrics)
