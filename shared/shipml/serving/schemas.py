"""Request and response schemas, generated from a bundle's feature schema.

A bundle says what its model takes (:class:`shipml.schema.FeatureSchema`): names, types, ranges,
categories. :func:`record_model` turns that into a pydantic model with ``pydantic.create_model``, so
the API validates exactly what the model was trained on, and the OpenAPI page documents it:

=========  ===================================================================
dtype      pydantic field
=========  ===================================================================
float      ``float``, strict (no "12.5" strings), finite, ``ge=min``, ``le=max``
int        ``int``, strict, ``ge=min``, ``le=max``
bool       ``bool``, strict (JSON ``true``/``false``)
category   ``Literal[...categories]``
=========  ===================================================================

and ``extra="forbid"``: an unknown field is a client mistake (a typo would otherwise be silently
ignored). :class:`RecordCodec` holds the compiled validators of one model, made once at load time.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from shipml.errors import ShipmlError
from shipml.schema import Feature, FeatureSchema
from shipml.serving.errors import ApiError

# ---- generated from a bundle ------------------------------------------------------------------


def _field_type(f: Feature) -> Any:
    bounds = {k: v for k, v in (("ge", f.min), ("le", f.max)) if v is not None}
    if f.dtype == "float":
        return Annotated[float, Field(strict=True, allow_inf_nan=False, description=f.description, **bounds)]
    if f.dtype == "int":
        ints = {k: int(v) for k, v in bounds.items()}
        return Annotated[int, Field(strict=True, description=f.description, **ints)]
    if f.dtype == "bool":
        return Annotated[bool, Field(strict=True, description=f.description)]
    if f.dtype == "category":
        return Annotated[Literal[tuple(f.categories or ("",))], Field(description=f.description)]
    raise ShipmlError(f"feature '{f.name}' has unknown dtype '{f.dtype}'")


def example_record(schema: FeatureSchema) -> dict[str, Any]:
    """A valid record for the docs' "Try it out" (typical, not special, values)."""
    out: dict[str, Any] = {}
    for f in schema.features:
        if f.dtype == "category":
            out[f.name] = (f.categories or ("",))[0]
        elif f.dtype == "bool":
            out[f.name] = False
        else:
            lo = f.min if f.min is not None else 0.0
            hi = f.max if f.max is not None else lo + 100.0
            value = lo + (hi - lo) / 100.0
            out[f.name] = int(round(value)) if f.dtype == "int" else round(value, 2)
    return out


def model_class_name(model_name: str) -> str:
    return "".join(part.capitalize() for part in model_name.replace("_", "-").split("-") if part) + "Record"


def record_model(schema: FeatureSchema, model_name: str = "model") -> type[BaseModel]:
    """A pydantic model of one input row of ``schema`` (unknown fields forbidden)."""
    fields = {f.name: (_field_type(f), ...) for f in schema.features}
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example_record(schema)]},
                        title=model_class_name(model_name))
    return create_model(model_class_name(model_name), __config__=config, **fields)


def batch_model(record: type[BaseModel], max_rows: int) -> type[BaseModel]:
    """``{"records": [record, ...]}`` with 1 to ``max_rows`` records."""
    name = record.__name__.removesuffix("Record") + "Batch"
    records = Annotated[list[record], Field(min_length=1, max_length=max_rows,  # type: ignore[valid-type]
                                            description=f"1 to {max_rows} records")]
    return create_model(name, __config__=ConfigDict(extra="forbid"), records=(records, ...))


def describe_errors(exc: ValidationError, drop: int = 0, max_items: int = 8) -> ApiError:
    """A pydantic error as one line naming every bad field (``amount: Input should be ...``)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return ApiError(400, f"malformed JSON: {errors[0]['msg'].removeprefix('Invalid JSON: ')}")
    parts, detail = [], []
    for err in errors:
        loc = [str(p) for p in err["loc"][drop:]]
        where = ".".join(loc) or "body"
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "field required"
        elif err["type"] == "extra_forbidden":
            msg = "unexpected field (not in the model's schema)"
        detail.append({"loc": loc, "msg": msg, "type": err["type"]})
        parts.append(f"{where}: {msg}")
    more = f" (and {len(parts) - max_items} more)" if len(parts) > max_items else ""
    return ApiError(422, "; ".join(parts[:max_items]) + more, detail)


class RecordCodec:
    """The validators of one model, compiled once: JSON bytes in, columnar data out."""

    def __init__(self, schema: FeatureSchema, model_name: str, max_rows: int) -> None:
        self.schema = schema
        self.names = tuple(schema.names)
        self.max_rows = max_rows
        self.record = record_model(schema, model_name)
        self.batch = batch_model(self.record, max_rows)
        self._one = TypeAdapter(self.record)
        self._many = TypeAdapter(self.batch)

    def decode_record(self, body: bytes) -> dict[str, Any]:
        """One valid row as ``{feature: value}``, or a 400/422 naming every problem."""
        try:
            return self._one.validate_json(body).__dict__
        except ValidationError as exc:
            raise describe_errors(exc) from None

    def decode_batch(self, body: bytes) -> dict[str, list[Any]]:
        try:
            rows = self._many.validate_json(body).records
        except ValidationError as exc:
            problem = describe_errors(exc)
            if any(d["type"] == "too_long" and d["loc"] == ["records"] for d in problem.detail):
                problem = ApiError(413, f"records: too many rows; the limit is {self.max_rows} "
                                              "per request (SHIPML_MAX_BATCH_ROWS)", problem.detail)
            elif any(d["type"] == "too_short" and d["loc"] == ["records"] for d in problem.detail):
                problem = ApiError(422, "records: the batch is empty; send 1 or more records",
                                         problem.detail)
            raise problem from None
        return {n: [r.__dict__[n] for r in rows] for n in self.names}

    def check_columns(self, columns: Any) -> dict[str, np.ndarray]:
        """Validate columnar input (TF Serving, v2) with the schema; converted arrays or a 4xx."""
        if not isinstance(columns, dict):
            raise ApiError(400, "expected named inputs (an object of feature name to values)")
        for name, values in columns.items():
            if isinstance(values, list) and any(isinstance(v, list | dict) for v in values):
                raise ApiError(400, f"'{str(name)[:80]}' must hold one plain value per row (no lists or objects)")
        try:
            result = self.schema.validate(columns, allow_extra=False)
        except ShipmlError as exc:
            raise ApiError(400, str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"inputs are not columns of scalars ({exc})") from None
        if not result.ok:
            raise ApiError(400, "; ".join(result.problems()))
        if result.n_rows == 0:
            raise ApiError(400, "the request holds no rows; send 1 or more")
        if result.n_rows > self.max_rows:
            raise ApiError(413, f"{result.n_rows} rows; the limit is {self.max_rows} per request "
                                      "(SHIPML_MAX_BATCH_ROWS)")
        return result.columns


# ---- responses (declared for the OpenAPI schema) ----------------------------------------------


class Prediction(BaseModel):
    prediction: int = Field(description="the predicted class label")
    class_name: str = Field(description="the name of the predicted class")
    probability: float = Field(description="probability of the predicted class")
    probabilities: dict[str, float] = Field(description="probability of every class, by class name")


class PredictResponse(Prediction):
    model: str
    version: int
    request_id: str


class BatchResponse(BaseModel):
    model: str
    version: int
    request_id: str
    predictions: list[Prediction]


class ErrorResponse(BaseModel):
    error: str = Field(description="what is wrong, in one line")
    detail: list[dict[str, Any]] | None = Field(None, description="one entry per bad field (validation errors)")
    request_id: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in [
        (400, "malformed request"), (401, "missing or wrong API key"), (404, "unknown model or version"),
        (413, "request or batch too large"), (422, "the input does not fit the model's schema"),
        (503, "no model loaded yet"),
    ]
}


# ---- TensorFlow Serving REST API -------------------------------------------------------------


class TFPredictRequest(BaseModel):
    """TF Serving's predict body: rows (``instances``) or columns (``inputs``), not both."""

    signature_name: str | None = None
    instances: list[dict[str, Any] | list[Any]] | None = Field(
        None, description="row format: one object (feature name to value) per row")
    inputs: dict[str, list[Any]] | None = Field(
        None, description="columnar format: feature name to the list of its values")


class TFPredictResponse(BaseModel):
    predictions: list[dict[str, Any]] | None = Field(None, description="answer to 'instances': one object per row")
    outputs: dict[str, list[Any]] | None = Field(None, description="answer to 'inputs': output name to values")


class TFStatusResponse(BaseModel):
    model_version_status: list[dict[str, Any]]


class TFMetadataResponse(BaseModel):
    model_spec: dict[str, Any]
    metadata: dict[str, Any]


# ---- Open Inference Protocol (v2) -------------------------------------------------------------

V2Datatype = Literal["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                     "FP16", "FP32", "FP64", "BYTES"]


class V2Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: V2Datatype
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class V2RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class V2InferRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[V2Tensor]
    outputs: list[V2RequestedOutput] | None = None


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[V2Tensor]


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Live(BaseModel):
    live: bool


class V2Ready(BaseModel):
    ready: bool
