"""TensorFlow Serving's REST API over the same repository (so TF Serving clients and habits carry over).

==============================================================  =======================================
``GET  /v1/models/{name}[/versions/{v}]``                        version status (``AVAILABLE``)
``GET  /v1/models/{name}[/versions/{v}]/metadata``               the signature: inputs and outputs
``POST /v1/models/{name}[/versions/{v}]:predict``                ``instances`` (rows) or ``inputs`` (columns,
                                                                 or one value per input: one row)
``POST /v1/models/{name}[/versions/{v}]:classify``               ``examples`` (+ ``context``): class scores
``POST /v1/models/{name}[/versions/{v}]:regress``                ``examples``: the positive class's probability
``*    /v1/models/{name}/labels/{label}...``                     404: version labels are not supported
==============================================================  =======================================

``signature_name`` may be ``serving_default`` (or empty); any other name is a 422 that lists them.
Bodies are validated by the model's generated pydantic models (:class:`shipml.serving.schemas.RecordCodec`).
Errors come back in TF Serving's shape, ``{"error": "..."}``, with a 4xx status.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic_core import to_json

from shipml.serving.body import read_body
from shipml.serving.deps import Repository, get_repository
from shipml.serving.errors import ApiError
from shipml.serving.repository import ServedModel
from shipml.serving.routes_predict import lean_route, predict_columns, served_model, versioned_get
from shipml.serving.schemas import (
    TFClassifyResponse,
    TFMetadataResponse,
    TFPredictResponse,
    TFRegressResponse,
    TFStatusResponse,
)

router = APIRouter(tags=["TensorFlow Serving REST API"])

_TF_DTYPES = {"float": "DT_DOUBLE", "int": "DT_INT64", "bool": "DT_BOOL", "category": "DT_STRING"}
BASE = "/v1/models/{name:model}"
VERSIONED = BASE + "/versions/{version:int}"


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


async def tf_status(name: str, repo: Repository, version: int) -> dict[str, Any]:
    """Status of every version of a model (or of one version)."""
    versions = repo.versions(name) if version is None else [version]
    return _status([repo.get(name, v) for v in versions])


async def tf_metadata(name: str, repo: Repository, version: int) -> dict[str, Any]:
    """A version's signature (default: the highest version): input and output tensors."""
    return _metadata(repo.get(name, version))


versioned_get(router, [BASE, VERSIONED], tf_status, response_model=TFStatusResponse)
versioned_get(router, [BASE + "/metadata", VERSIONED + "/metadata"], tf_metadata, response_model=TFMetadataResponse)


def _json(body: Any) -> Response:
    return Response(to_json(body), media_type="application/json")


async def tf_predict(request: Request) -> Response:
    """Predict: ``{"instances": [...]}`` (rows) or ``{"inputs": {...}}`` (columns, or one value per feature)."""
    served = served_model(request, await get_repository(request))
    columns, fmt = served.codec.decode_tf(await read_body(request))
    proba, index = await predict_columns(request, served, columns)
    labels = [served.class_labels[i] for i in index]
    names = [served.class_names[i] for i in index]
    if fmt == "instances":
        return _json({"predictions": [{"label": lab, "class_name": cn, "probabilities": p}
                                      for lab, cn, p in zip(labels, names, proba, strict=True)]})
    return _json({"outputs": {"label": labels, "class_name": names, "probabilities": proba}})


async def tf_classify(request: Request) -> Response:
    """Classify ``examples`` (features, with shared ones in ``context``): (class, score) pairs per example."""
    served = served_model(request, await get_repository(request))
    columns = served.codec.decode_examples(await read_body(request))
    proba, _ = await predict_columns(request, served, columns)
    names = served.class_names
    return _json({"result": [[[n, p] for n, p in zip(names, row, strict=True)] for row in proba]})


async def tf_regress(request: Request) -> Response:
    """Regress ``examples``: for a two-class model, the probability of the positive (last) class per example."""
    served = served_model(request, await get_repository(request))
    if len(served.class_names) != 2:
        raise ApiError(400, f"model '{served.name}' has {len(served.class_names)} classes: :regress answers a "
                            "two-class model (the positive class's probability); use :classify")
    columns = served.codec.decode_examples(await read_body(request))
    proba, _ = await predict_columns(request, served, columns)
    return _json({"result": [row[-1] for row in proba]})


lean_route(router, [BASE + ":predict", VERSIONED + ":predict"], tf_predict, response_model=TFPredictResponse,
           openapi_extra={"x-shipml-body": "tf"})
lean_route(router, [BASE + ":classify", VERSIONED + ":classify"], tf_classify, response_model=TFClassifyResponse,
           openapi_extra={"x-shipml-body": "tf_examples"})
lean_route(router, [BASE + ":regress", VERSIONED + ":regress"], tf_regress, response_model=TFRegressResponse,
           openapi_extra={"x-shipml-body": "tf_examples"})


@router.api_route(BASE + "/labels/{label}{rest:path}", methods=["GET", "HEAD", "POST"], include_in_schema=False)
async def tf_labels(name: str, label: str) -> Response:
    """Version labels (``/labels/stable``) are a TF Serving config feature this server does not have."""
    raise ApiError(404, f"version labels are not supported (no '{label[:40]}' label for model '{name[:80]}'); "
                        "address a version by number: /v1/models/{name}/versions/{version}")
