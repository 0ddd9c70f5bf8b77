"""The Open Inference Protocol (v2: KServe, Triton, MLServer), so their standard clients work unchanged.

Each feature is one input tensor of shape ``[rows]`` (or ``[rows, 1]``): numbers as ``FP64``/``INT64``/
``BOOL``, categories as ``BYTES``. Outputs: ``label`` (INT64, ``[rows]``), ``probabilities`` (FP64,
``[rows, classes]``) and, on request, ``class_name`` (BYTES). Triton's binary tensor extension is read
on input (``Inference-Header-Content-Length``), so ``tritonclient`` works with its defaults; outputs
are always JSON, which every client reads.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic_core import to_json

from shipml import __version__
from shipml.serving.deps import MetricsDep, Repository
from shipml.serving.errors import ApiError
from shipml.serving.repository import ServedModel
from shipml.serving.routes_tfserving import parse_json
from shipml.serving.schemas import (
    ERROR_RESPONSES,
    V2InferResponse,
    V2Live,
    V2ModelMetadata,
    V2Ready,
    V2ServerMetadata,
)

router = APIRouter(tags=["Open Inference Protocol (v2)"])

_V2_TYPES = {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES"}
_NUMPY = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
          "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
          "FP32": np.float32, "FP64": np.float64}
OUTPUTS = ("label", "probabilities", "class_name")


def _flatten(data: Any) -> list[Any]:
    out: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _bytes_elements(raw: bytes, name: str) -> list[str]:
    """Triton's BYTES binary layout: each element is a 4-byte little-endian length, then the bytes."""
    out, pos = [], 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise ApiError(400, f"input '{name}': truncated BYTES tensor")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise ApiError(400, f"input '{name}': truncated BYTES tensor")
        try:
            out.append(raw[pos:pos + n].decode())
        except UnicodeDecodeError:
            raise ApiError(400, f"input '{name}': BYTES element is not UTF-8 text") from None
        pos += n
    return out


def split_body(request: Request, body: bytes) -> tuple[Any, bytes]:
    header = request.headers.get("inference-header-content-length")
    if header is None:
        return parse_json(body), b""
    try:
        n = int(header)
    except ValueError:
        raise ApiError(400, "Inference-Header-Content-Length is not a number") from None
    if not 0 < n <= len(body):
        raise ApiError(400, f"Inference-Header-Content-Length {n} does not fit a body of {len(body)} bytes")
    return parse_json(body[:n]), body[n:]


def v2_columns(payload: Any, binary: bytes, served: ServedModel) -> dict[str, list[Any]]:
    """Columns from a v2 inference request (JSON data or binary tensors)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list) or not payload["inputs"]:
        raise ApiError(400, "the body must be a JSON object with a non-empty 'inputs' list of tensors")
    columns: dict[str, list[Any]] = {}
    offset = 0
    for k, tensor in enumerate(payload["inputs"]):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise ApiError(400, f"inputs[{k}] must be an object with a 'name'")
        name = tensor["name"]
        shape, datatype = tensor.get("shape"), tensor.get("datatype")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape) or not 1 <= len(shape) <= 2:
            raise ApiError(400, f"input '{name}': shape must be [rows] or [rows, 1], got {str(shape)[:60]}")
        if len(shape) == 2 and shape[1] != 1:
            raise ApiError(400, f"input '{name}': one feature per tensor, so shape [rows] or [rows, 1]")
        if datatype not in _NUMPY and datatype != "BYTES":
            raise ApiError(400, f"input '{name}': unknown datatype {str(datatype)[:20]!r}")
        rows = shape[0]
        if rows > served.codec.max_rows:
            raise ApiError(413, f"{rows} rows; the limit is {served.codec.max_rows} per request "
                                "(SHIPML_MAX_BATCH_ROWS)")
        params = tensor.get("parameters") or {}
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise ApiError(400, f"input '{name}': binary_data_size does not fit the binary part of the body")
            raw = binary[offset:offset + size]
            offset += size
            if datatype == "BYTES":
                values: list[Any] = _bytes_elements(raw, name)
            else:
                dtype = np.dtype(_NUMPY[datatype]).newbyteorder("<")
                if size % dtype.itemsize:
                    raise ApiError(400, f"input '{name}': {size} bytes is not a whole number of {datatype}")
                values = np.frombuffer(raw, dtype=dtype).tolist()
        else:
            if "data" not in tensor:
                raise ApiError(400, f"input '{name}': no 'data' (and no binary_data_size)")
            values = _flatten(tensor["data"])
        if len(values) != math.prod(shape):
            raise ApiError(400, f"input '{name}': shape {shape} holds {math.prod(shape)} values, data has "
                                f"{len(values)}")
        if name in columns:
            raise ApiError(400, f"input '{name}' is sent twice")
        columns[name] = values
    return columns


def _requested(payload: dict[str, Any]) -> tuple[str, ...]:
    outputs = payload.get("outputs")
    if outputs is None:
        return ("label", "probabilities")
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise ApiError(400, "'outputs' must be a list of objects with a 'name'")
    names = tuple(o["name"] for o in outputs)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown:
        raise ApiError(400, f"unknown output(s) {unknown}; this model has: {', '.join(OUTPUTS)}")
    return names


async def _infer(request: Request, served: ServedModel, metrics: Any) -> Response:
    payload, binary = split_body(request, await request.body())
    columns = v2_columns(payload, binary, served)
    wanted = _requested(payload)
    valid = served.codec.check_columns(columns)
    proba, index = served.score(valid)
    metrics.count_predictions(served.name, served.version, served.class_names, index)
    n = len(index)
    made = {
        "label": {"name": "label", "datatype": "INT64", "shape": [n],
                  "data": np.asarray(served.class_labels)[index].tolist()},
        "probabilities": {"name": "probabilities", "datatype": "FP64", "shape": [n, proba.shape[1]],
                          "data": proba.ravel().tolist()},
        "class_name": {"name": "class_name", "datatype": "BYTES", "shape": [n],
                       "data": [served.class_names[i] for i in index.tolist()]},
    }
    body: dict[str, Any] = {"model_name": served.name, "model_version": str(served.version),
                            "outputs": [made[w] for w in wanted]}
    if isinstance(payload.get("id"), str):
        body["id"] = payload["id"]
    return Response(to_json(body), media_type="application/json")


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


@router.get("/v2", response_model=V2ServerMetadata)
async def v2_server_metadata() -> dict[str, Any]:
    """Server name, version and protocol extensions."""
    return {"name": "shipml", "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/v2/health/live", response_model=V2Live)
async def v2_live() -> dict[str, Any]:
    """The process answers (Kubernetes liveness)."""
    return {"live": True}


@router.get("/v2/health/ready", response_model=V2Ready, responses={503: {"model": V2Ready}})
async def v2_ready(request: Request) -> Response:
    """200 once the models are loaded, 503 before (Kubernetes readiness: no traffic until then)."""
    repo = getattr(request.app.state, "repository", None)
    ready = bool(repo is not None and repo.ready)
    return Response(to_json({"ready": ready}), status_code=200 if ready else 503, media_type="application/json")


@router.get("/v2/models/{name}", response_model=V2ModelMetadata, responses=ERROR_RESPONSES)
async def v2_model_metadata(name: str, repo: Repository) -> dict[str, Any]:
    """A model's inputs, outputs and versions."""
    return _model_metadata(repo, repo.get(name))


@router.get("/v2/models/{name}/versions/{version}", response_model=V2ModelMetadata, responses=ERROR_RESPONSES)
async def v2_version_metadata(name: str, version: int, repo: Repository) -> dict[str, Any]:
    """One version's inputs and outputs."""
    return _model_metadata(repo, repo.get(name, version))


@router.get("/v2/models/{name}/ready", response_model=V2Ready, responses=ERROR_RESPONSES)
async def v2_model_ready(name: str, repo: Repository) -> dict[str, Any]:
    """200 when the model is loaded (404 when it is not served)."""
    repo.get(name)
    return {"ready": True}


@router.get("/v2/models/{name}/versions/{version}/ready", response_model=V2Ready, responses=ERROR_RESPONSES)
async def v2_version_ready(name: str, version: int, repo: Repository) -> dict[str, Any]:
    """200 when that version is loaded."""
    repo.get(name, version)
    return {"ready": True}


@router.post("/v2/models/{name}/infer", response_model=V2InferResponse, responses=ERROR_RESPONSES,
             openapi_extra={"x-shipml-body": "v2"})
async def v2_infer(name: str, request: Request, repo: Repository, metrics: MetricsDep) -> Response:
    """Inference with the default (highest) version."""
    return await _infer(request, repo.get(name), metrics)


@router.post("/v2/models/{name}/versions/{version}/infer", response_model=V2InferResponse,
             responses=ERROR_RESPONSES, openapi_extra={"x-shipml-body": "v2"})
async def v2_version_infer(name: str, version: int, request: Request, repo: Repository,
                           metrics: MetricsDep) -> Response:
    """Inference with one version."""
    return await _infer(request, repo.get(name, version), metrics)
