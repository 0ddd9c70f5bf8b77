"""The Open Inference Protocol (v2: KServe, Triton, MLServer), so their standard clients work unchanged.

Each feature is one input tensor of shape ``[rows]`` (or ``[rows, 1]``): numbers as ``FP64``/``INT64``
(or any narrower float/int type), booleans as ``BOOL``, categories as ``BYTES``. Outputs: ``label``
(INT64, ``[rows]``), ``probabilities`` (FP64, ``[rows, classes]``) and ``class_name`` (BYTES,
``[rows]``): all three unless the request names some. ``id`` is echoed. Triton's binary tensor
extension is read on input (``Inference-Header-Content-Length``), so ``tritonclient`` works with its
defaults; gzip/deflate bodies (its ``request_compression_algorithm``) are decoded; outputs are JSON.
Request bodies are validated by the model's generated pydantic model (``RecordCodec.v2``).
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic_core import to_json

from shipml import __version__
from shipml.serving.body import read_body
from shipml.serving.deps import Repository, get_repository
from shipml.serving.errors import ApiError
from shipml.serving.repository import ServedModel
from shipml.serving.routes_predict import get_and_head, lean_route, predict_columns, served_model, versioned_get
from shipml.serving.schemas import (
    V2_OUTPUTS,
    V2InferResponse,
    V2Live,
    V2ModelMetadata,
    V2ModelReady,
    V2Ready,
    V2ServerMetadata,
)

router = APIRouter(tags=["Open Inference Protocol (v2)"])

_V2_TYPES = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES"}
BASE = "/v2/models/{name:model}"
VERSIONED = BASE + "/versions/{version:int}"


def split_body(request: Request, body: bytes) -> tuple[bytes, bytes]:
    """The JSON header and the binary tensors of a body (Triton's ``Inference-Header-Content-Length``)."""
    header = None
    for name, value in request.scope["headers"]:  # (ASGI header names are lower case)
        if name == b"inference-header-content-length":
            header = value
            break
    if header is None:
        return body, b""
    try:
        n = int(header)
    except ValueError:
        raise ApiError(400, "Inference-Header-Content-Length is not a number") from None
    if not 0 < n <= len(body):
        raise ApiError(400, f"Inference-Header-Content-Length {n} does not fit a body of {len(body)} bytes")
    return body[:n], body[n:]


async def v2_infer(request: Request) -> Response:
    """Inference: one input tensor per feature; outputs ``label``, ``probabilities``, ``class_name``."""
    served = served_model(request, await get_repository(request))
    header, binary = split_body(request, await read_body(request))
    columns, parsed = served.codec.decode_v2(header, binary)
    proba, index = await predict_columns(request, served, columns)
    n, labels, names = len(index), served.class_labels, served.class_names
    tensors = {"label": {"name": "label", "datatype": "INT64", "shape": [n], "data": [labels[i] for i in index]},
               "probabilities": {"name": "probabilities", "datatype": "FP64", "shape": [n, len(names)],
                                 "data": list(chain.from_iterable(proba))},
               "class_name": {"name": "class_name", "datatype": "BYTES", "shape": [n],
                              "data": [names[i] for i in index]}}
    requested = parsed.get("outputs")
    outputs = [tensors[o["name"]] for o in requested] if requested else [tensors[name] for name in V2_OUTPUTS]
    body: dict[str, Any] = {"model_name": served.name, "model_version": str(served.version)}
    if parsed.get("id") is not None:
        body["id"] = parsed["id"]
    body["outputs"] = outputs
    return Response(to_json(body), media_type="application/json")


lean_route(router, [BASE + "/infer", VERSIONED + "/infer"], v2_infer, response_model=V2InferResponse,
           openapi_extra={"x-shipml-body": "v2"})


def _model_metadata(repo: Any, served: ServedModel) -> dict[str, Any]:
    return {
        "name": served.name,
        "versions": [str(v) for v in repo.versions(served.name)],
        "platform": f"shipml-{served.backend}",
        "inputs": [{"name": f.name, "datatype": _V2_TYPES[f.dtype], "shape": [-1]}
                   for f in served.predictor.schema.features],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(served.class_names)]},
                    {"name": "class_name", "datatype": "BYTES", "shape": [-1]}],
    }


@get_and_head(router, "/v2", response_model=V2ServerMetadata)
async def v2_server_metadata() -> dict[str, Any]:
    """Server name, version and protocol extensions."""
    return {"name": "shipml", "version": __version__, "extensions": ["binary_tensor_data"]}


@get_and_head(router, "/v2/health/live", response_model=V2Live)
async def v2_live() -> dict[str, Any]:
    """The process answers (Kubernetes liveness)."""
    return {"live": True}


@get_and_head(router, "/v2/health/ready", response_model=V2Ready,
              responses={503: {"model": V2Ready, "description": "not every model is ready yet"}})
async def v2_ready(request: Request) -> Response:
    """200 once every model in the repository has a served version, 503 before (Kubernetes readiness)."""
    repo = getattr(request.app.state, "repository", None)
    ready = bool(repo is not None and repo.ready)
    return Response(to_json({"ready": ready}), status_code=200 if ready else 503, media_type="application/json")


async def v2_model_metadata(name: str, repo: Repository, version: int) -> dict[str, Any]:
    """A model's inputs, outputs and versions (of one version when given)."""
    return _model_metadata(repo, repo.get(name, version))


async def v2_model_ready(name: str, repo: Repository, version: int) -> dict[str, Any]:
    """200 with ``ready: true`` when the model (version) is served; 404 when it is not."""
    served = repo.get(name, version)
    return {"name": served.name, "version": str(served.version) if version is not None else None, "ready": True}


versioned_get(router, [BASE, VERSIONED], v2_model_metadata, response_model=V2ModelMetadata)
versioned_get(router, [BASE + "/ready", VERSIONED + "/ready"], v2_model_ready, response_model=V2ModelReady,
              response_model_exclude_none=True)
