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

Each body model also has a *fast* twin (``fast=True``) without the Python validators the lenient
forms need (``14.0`` as an integer, v2 ``data`` nested like its shape, TF list rows and ``inputs``):
pure-Rust validation of the common form, about half the cost. It accepts a subset of what the full
model accepts, with the same values, so the codec tries it first and falls back to the full model
(whose errors are the ones reported) when it refuses.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from shipml.errors import ShipmlError
from shipml.schema import Feature, FeatureSchema
from shipml.serving.errors import ApiError

# ---- generated from a bundle ------------------------------------------------------------------


def _whole_float_to_int(value: Any) -> Any:
    """JSON Schema's ``integer`` includes ``14.0``; ``true`` and ``"14"`` stay refused (strict below)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _field_type(f: Feature, description: bool = True, fast: bool = False) -> Any:
    """The pydantic type of one feature's value: the same on every route (``/predict``, TF Serving, v2).

    ``fast``: integers without the ``14.0`` conversion (a Python call per value), for the fast twins."""
    bounds = {k: v for k, v in (("ge", f.min), ("le", f.max)) if v is not None}
    doc = {"description": f.description} if description and f.description else {}
    if f.dtype == "float":
        return Annotated[float, Field(strict=True, allow_inf_nan=False, **doc, **bounds)]
    if f.dtype == "int":
        ints = {k: int(v) for k, v in bounds.items()}
        if fast:
            return Annotated[int, Field(strict=True, **doc, **ints)]
        return Annotated[int, Field(strict=True, **doc, **ints), BeforeValidator(_whole_float_to_int)]
    if f.dtype == "bool":
        return Annotated[bool, Field(strict=True, **doc)]
    if f.dtype == "category":
        return Annotated[Literal[tuple(f.categories or ("",))], Field(**doc)]
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


def record_model(schema: FeatureSchema, model_name: str = "model", fast: bool = False) -> type[BaseModel]:
    """A pydantic model of one input row of ``schema`` (unknown fields forbidden; ``fast``: see the module)."""
    fields = {f.name: (_field_type(f, fast=fast), ...) for f in schema.features}
    name = model_class_name(model_name)
    if fast:
        return create_model("Fast" + name, __config__=ConfigDict(extra="forbid"), **fields)
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example_record(schema)]}, title=name)
    return create_model(name, __config__=config, **fields)


def batch_model(record: type[BaseModel], max_rows: int) -> type[BaseModel]:
    """``{"records": [record, ...]}`` with 1 to ``max_rows`` records."""
    name = record.__name__.removesuffix("Record") + "Batch"
    records = Annotated[list[record], Field(min_length=1, max_length=max_rows,  # type: ignore[valid-type]
                                            description=f"1 to {max_rows} records")]
    return create_model(name, __config__=ConfigDict(extra="forbid"), records=(records, ...))


# ---- the standard protocols' request bodies, generated per model ---------------------------------

V2_INT_TYPES = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
V2_DATATYPES: dict[str, tuple[str, ...]] = {
    "float": ("FP64", "FP32", "FP16", *V2_INT_TYPES), "int": V2_INT_TYPES, "bool": ("BOOL",),
    "category": ("BYTES",)}
V2_OUTPUTS = ("label", "probabilities", "class_name")
TF_SIGNATURES = ("", "serving_default")


def _prefix(model_name: str) -> str:
    return model_class_name(model_name).removesuffix("Record")


def _one_per_row(values: Any) -> Any:
    """v2 ``data`` may be nested like its shape (``[[v], [v]]`` for ``[rows, 1]``): one value per row."""
    if isinstance(values, list) and values and all(isinstance(v, list) and len(v) == 1 for v in values):
        return [v[0] for v in values]
    return values


def v2_input_model(f: Feature, prefix: str) -> type[BaseModel]:
    """One feature's input tensor: its name, a ``[rows]`` or ``[rows, 1]`` shape, datatypes that fit."""
    value = _field_type(f, description=False)
    rows = Annotated[int, Field(strict=True, ge=0), BeforeValidator(_whole_float_to_int)]
    shape = Union[tuple[rows], tuple[rows, Literal[1]]]  # noqa: UP007 (a runtime union of generated types)
    return create_model(
        f"{prefix}V2Input{model_class_name(f.name).removesuffix('Record')}",
        __config__=ConfigDict(extra="forbid"),
        name=(Literal[f.name], ...),
        shape=(shape, Field(description="[rows] or [rows, 1]")),
        datatype=(Literal[V2_DATATYPES[f.dtype]], ...),
        data=(Annotated[list[value], BeforeValidator(_one_per_row)], Field(None, description=(
            "one value per row (flat, or nested as the shape); absent for a binary tensor"))),
        parameters=(dict[str, Any], Field(None, description="binary_data_size for a binary tensor")),
    )


def v2_request_model(schema: FeatureSchema, model_name: str) -> type[BaseModel]:
    """The v2 inference request of one model: one tensor per feature, named outputs, a string ``id``."""
    prefix = _prefix(model_name)
    tensors = [v2_input_model(f, prefix) for f in schema.features]
    tensor = tensors[0] if len(tensors) == 1 else Annotated[Union[tuple(tensors)], Field(discriminator="name")]  # noqa: UP007
    output = create_model(f"{prefix}V2RequestedOutput", __config__=ConfigDict(extra="forbid"),
                          name=(Literal[V2_OUTPUTS], ...), parameters=(dict[str, Any], None))
    return create_model(
        f"{prefix}V2InferRequest", __config__=ConfigDict(extra="forbid"),
        id=(Annotated[str, Field(strict=True, max_length=256)], Field(None, description="echoed in the response")),
        parameters=(dict[str, Any], None),
        inputs=(Annotated[list[tensor], Field(min_length=1, description="one tensor per feature")], ...),
        outputs=(list[output], Field(None, description="outputs to return (default: all)")),
    )


def v2_fast_request_type(schema: FeatureSchema) -> Any:
    """The fast twin of :func:`v2_request_model` as TypedDicts (dicts are cheaper to build than models):
    JSON ``data`` only, flat, shape ``[rows]`` of integers, strict integers; binary tensors, ``[rows, 1]``
    and the rest go to the full model."""
    forbid = ConfigDict(extra="forbid")

    def typed(name: str, fields: dict[str, Any]) -> Any:
        t = TypedDict(name, fields)  # type: ignore[operator]
        t.__pydantic_config__ = forbid  # type: ignore[attr-defined]
        return t

    tensors = [typed(f"FastV2Input{model_class_name(f.name).removesuffix('Record')}", {
        "name": Literal[f.name], "shape": tuple[Annotated[int, Field(strict=True, ge=0)]],
        "datatype": Literal[V2_DATATYPES[f.dtype]], "data": list[_field_type(f, description=False, fast=True)]})
        for f in schema.features]
    tensor = tensors[0] if len(tensors) == 1 else Annotated[Union[tuple(tensors)], Field(discriminator="name")]  # noqa: UP007
    output = typed("FastV2RequestedOutput", {"name": Literal[V2_OUTPUTS], "parameters": NotRequired[dict[str, Any]]})
    return typed("FastV2InferRequest", {
        "id": NotRequired[Annotated[str, Field(strict=True, max_length=256)]],
        "parameters": NotRequired[dict[str, Any]],
        "inputs": Annotated[list[tensor], Field(min_length=1)], "outputs": NotRequired[list[output]]})


UNION_TAGS = frozenset({"row-object", "row-list", "columns", "one-row"})  # left out of error locations


def _row_kind(value: Any) -> str:
    return "row-list" if isinstance(value, list | tuple) else "row-object"


def _inputs_kind(value: Any) -> str:
    if isinstance(value, dict) and any(isinstance(v, list) for v in value.values()):
        return "columns"
    return "one-row"


def _exactly_one(self: Any) -> Any:
    if (self.instances is None) == (self.inputs is None):
        raise ValueError("send exactly one of 'instances' (row format) or 'inputs' (columnar format)")
    return self


def tf_fast_request_model(record: type[BaseModel]) -> type[BaseModel]:
    """The common TF Serving predict body, ``{"instances": [{...}, ...]}``, without Python validators
    (the fast twin of :func:`tf_request_model`; ``record`` is the fast record model)."""
    return create_model(
        "Fast" + record.__name__.removesuffix("Record") + "TFPredictRequest", __config__=ConfigDict(extra="forbid"),
        signature_name=(Literal[TF_SIGNATURES], None),
        instances=(Annotated[list[record], Field(min_length=1)], ...),  # type: ignore[valid-type]
    )


def tf_request_model(schema: FeatureSchema, model_name: str, record: type[BaseModel]) -> type[BaseModel]:
    """TF Serving's predict body for one model: ``instances`` (objects or lists) or ``inputs`` (columns or one row)."""
    prefix = _prefix(model_name)
    values = [_field_type(f, description=False) for f in schema.features]
    as_list = tuple[tuple(values)]  # type: ignore[valid-type]
    instance = Annotated[Annotated[record, Tag("row-object")] | Annotated[as_list, Tag("row-list")],
                         Discriminator(_row_kind)]
    columns = create_model(f"{prefix}TFColumns", __config__=ConfigDict(extra="forbid"), **{
        f.name: (Annotated[list[v], Field(min_length=1)], ...) for f, v in zip(schema.features, values, strict=True)})
    inputs = Annotated[Annotated[columns, Tag("columns")] | Annotated[record, Tag("one-row")],
                       Discriminator(_inputs_kind)]
    return create_model(
        f"{prefix}TFPredictRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={
            "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}]}),
        __validators__={"exactly_one": model_validator(mode="after")(_exactly_one)},
        signature_name=(Literal[TF_SIGNATURES], Field(None, description="'serving_default' (or '')")),
        instances=(Annotated[list[instance], Field(min_length=1)], Field(
            None, description="row format: one object (or list in feature order) per row")),
        inputs=(inputs, Field(None, description="columnar format: feature name to its values (or to one value)")),
    )


def partial_record_model(schema: FeatureSchema, model_name: str) -> type[BaseModel]:
    """A record whose fields may be left out (TF Serving's classify ``context`` and ``examples``)."""
    fields = {f.name: (_field_type(f, description=False), None) for f in schema.features}
    return create_model(f"{_prefix(model_name)}PartialRecord", __config__=ConfigDict(extra="forbid"), **fields)


def tf_examples_model(schema: FeatureSchema, model_name: str) -> type[BaseModel]:
    """TF Serving's classify/regress body: ``examples`` (rows), plus ``context`` features shared by every row."""
    partial = partial_record_model(schema, model_name)
    return create_model(
        f"{_prefix(model_name)}TFExamplesRequest", __config__=ConfigDict(extra="forbid"),
        signature_name=(Literal[TF_SIGNATURES], None),
        context=(partial, Field(None, description="features common to every example")),
        examples=(Annotated[list[partial], Field(min_length=1)], ...),
    )


def describe_errors(exc: ValidationError, prefix: str = "", max_items: int = 8) -> ApiError:
    """A pydantic error as one line naming every bad field (``amount: Input should be ...``)."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return ApiError(400, f"malformed JSON: {errors[0]['msg'].removeprefix('Invalid JSON: ')}")
    parts, detail = [], []
    for err in errors:
        loc = ([prefix] if prefix else []) + [str(p) for p in err["loc"] if p not in UNION_TAGS]
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
    """The validators of one model, compiled once at load: JSON bytes in, valid columns out.

    The same pydantic field types check every route (``/predict``, TF Serving, v2), so a value that is
    valid on one is valid on all; what JSON Schema cannot say (columns of one length, a tensor per
    feature, shape and data agreeing) is checked here and answered with a 400.
    """

    def __init__(self, schema: FeatureSchema, model_name: str, max_rows: int) -> None:
        self.schema = schema
        self.names = tuple(schema.names)
        self.max_rows = max_rows
        self.record = record_model(schema, model_name)
        self.batch = batch_model(self.record, max_rows)
        self.tf = tf_request_model(schema, model_name, self.record)
        self.tf_examples = tf_examples_model(schema, model_name)
        self.v2 = v2_request_model(schema, model_name)
        self._one = TypeAdapter(self.record)
        self._many = TypeAdapter(self.batch)
        self._tf = TypeAdapter(self.tf)
        self._tf_examples = TypeAdapter(self.tf_examples)
        self._v2 = TypeAdapter(self.v2)
        self._values = {f.name: TypeAdapter(list[_field_type(f, description=False)]) for f in schema.features}
        fast_record = record_model(schema, model_name, fast=True)  # the fast twins (see the module)
        self._one_fast = TypeAdapter(fast_record)
        self._many_fast = TypeAdapter(batch_model(fast_record, max_rows))
        self._tf_fast = TypeAdapter(tf_fast_request_model(fast_record))
        self._v2_fast = TypeAdapter(v2_fast_request_type(schema))

    @staticmethod
    def _parse(fast: TypeAdapter, full: TypeAdapter, body: bytes) -> Any:
        """``body`` validated by the fast twin, else by the full model (its errors are the ones raised)."""
        try:
            return fast.validate_json(body)
        except ValidationError:
            return full.validate_json(body)

    def _too_many(self, n: int) -> None:
        if n > self.max_rows:
            raise ApiError(413, f"{n} rows; the limit is {self.max_rows} per request (SHIPML_MAX_BATCH_ROWS)")

    def decode_record(self, body: bytes) -> dict[str, Any]:
        """One valid row as ``{feature: value}``, or a 400/422 naming every problem."""
        try:
            return self._parse(self._one_fast, self._one, body).__dict__
        except ValidationError as exc:
            raise describe_errors(exc) from None

    def decode_batch(self, body: bytes) -> dict[str, list[Any]]:
        try:
            rows = self._parse(self._many_fast, self._many, body).records
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

    def decode_tf(self, body: bytes) -> tuple[dict[str, list[Any]], str]:
        """Columns from a TF Serving predict body, and its format (``instances`` or ``inputs``)."""
        try:
            request = self._parse(self._tf_fast, self._tf, body)
        except ValidationError as exc:
            raise describe_errors(exc) from None
        if request.instances is not None:
            self._too_many(len(request.instances))
            rows = [dict(zip(self.names, r, strict=True)) if isinstance(r, tuple) else r.__dict__
                    for r in request.instances]
            return {n: [r[n] for r in rows] for n in self.names}, "instances"
        given = request.inputs.__dict__
        if isinstance(request.inputs, self.record):  # single values: one row
            return {n: [given[n]] for n in self.names}, "inputs"
        lengths = {len(v) for v in given.values()}
        if len(lengths) > 1:
            raise ApiError(400, f"inputs: the columns have different lengths {sorted(lengths)}; "
                                "send one value per row in every column")
        self._too_many(lengths.pop())
        return {n: given[n] for n in self.names}, "inputs"

    def decode_examples(self, body: bytes) -> dict[str, list[Any]]:
        """Columns from a TF Serving classify/regress body (``context`` merged into every example)."""
        try:
            request = self._tf_examples.validate_json(body)
        except ValidationError as exc:
            raise describe_errors(exc) from None
        self._too_many(len(request.examples))
        context = {k: v for k, v in request.context.__dict__.items() if v is not None} if request.context else {}
        columns: dict[str, list[Any]] = {n: [] for n in self.names}
        for i, example in enumerate(request.examples):
            row = {**context, **{k: v for k, v in example.__dict__.items() if v is not None}}
            missing = [n for n in self.names if n not in row]
            if missing:
                raise ApiError(400, f"examples.{i}: missing feature(s) {missing} (in neither the example "
                                    "nor the context)")
            for n in self.names:
                columns[n].append(row[n])
        return columns

    def decode_v2(self, header: bytes, binary: bytes = b"") -> tuple[dict[str, list[Any]], dict[str, Any]]:
        """Columns from a v2 inference request (JSON ``data`` or binary tensors), and the parsed request
        as a dict (``id``, ``outputs``: absent or None when not sent)."""
        try:
            request = self._v2_fast.validate_json(header)
        except ValidationError:
            try:
                request = self._v2.validate_json(header).model_dump()
            except ValidationError as exc:
                raise describe_errors(exc) from None
        else:
            columns = self._v2_fast_columns(request["inputs"])
            if columns is not None:
                return columns, request
        return self._v2_columns(request, binary), request

    def _v2_fast_columns(self, inputs: list[dict[str, Any]]) -> dict[str, list[Any]] | None:
        """The columns of what the fast twin accepted (JSON ``data``, names of features), when every feature is
        sent once and every tensor holds its shape's rows; None: :meth:`_v2_columns` says what is wrong."""
        if len(inputs) != len(self.names):
            return None
        columns = {tensor["name"]: tensor["data"] for tensor in inputs}
        n = len(inputs[0]["data"])
        if len(columns) != len(inputs) or n == 0:
            return None
        for tensor in inputs:
            if tensor["shape"][0] != n or len(tensor["data"]) != n:
                return None
        if n > self.max_rows:
            self._too_many(n)
        return columns if tuple(columns) == self.names else {name: columns[name] for name in self.names}

    def _v2_columns(self, request: dict[str, Any], binary: bytes) -> dict[str, list[Any]]:
        """The columns of any valid v2 request (binary tensors too), or the error that names what is wrong."""
        columns: dict[str, list[Any]] = {}
        offset = 0
        rows: set[int] = set()
        for tensor in request["inputs"]:
            name = tensor["name"]
            if name in columns:
                raise ApiError(400, f"input '{name}' is sent twice")
            params = tensor.get("parameters")
            size = None if params is None else params.get("binary_data_size")
            if size is not None:
                if type(size) is not int or size < 0 or offset + size > len(binary):
                    raise ApiError(400, f"input '{name}': binary_data_size does not fit the binary part of the body")
                raw = binary[offset:offset + size]
                offset += size
                try:
                    values = self._values[name].validate_python(binary_values(raw, tensor["datatype"], name))
                except ValidationError as exc:
                    raise describe_errors(exc, prefix=f"inputs.{name}.data") from None
            elif (values := tensor.get("data")) is None:
                raise ApiError(400, f"input '{name}': no 'data' (and no binary_data_size)")
            n = tensor["shape"][0]
            if len(values) != n:
                raise ApiError(400, f"input '{name}': shape {list(tensor['shape'])} holds {n} values, data has "
                                    f"{len(values)}")
            rows.add(n)
            columns[name] = values
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise ApiError(400, f"missing input tensor(s) {missing}; the model takes one per feature: "
                                f"{', '.join(self.names)}")
        if len(rows) > 1:
            raise ApiError(400, f"the input tensors have different numbers of rows {sorted(rows)}")
        n_rows = rows.pop()
        if n_rows == 0:
            raise ApiError(400, "the request holds no rows (shape [0]); send 1 or more")
        self._too_many(n_rows)
        return {n: columns[n] for n in self.names}


def binary_values(raw: bytes, datatype: str, name: str) -> list[Any]:
    """A binary tensor's values (Triton's binary tensor extension): the one place bytes are decoded by hand."""
    import struct

    import numpy as np

    if datatype == "BYTES":  # each element: a 4-byte little-endian length, then the bytes
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
    dtype = np.dtype(datatype.lower().replace("fp", "float")).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise ApiError(400, f"input '{name}': {len(raw)} bytes is not a whole number of {datatype}")
    return np.frombuffer(raw, dtype=dtype).tolist()


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
        (413, "request or batch too large"), (415, "unsupported Content-Encoding"),
        (422, "the input does not fit the model's schema"), (503, "no model loaded yet"),
    ]
}


# ---- TensorFlow Serving REST API -------------------------------------------------------------


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
    data: list[Any]
    parameters: dict[str, Any] | None = None


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


class V2ModelReady(BaseModel):
    name: str
    version: str | None = None
    ready: bool


class TFClassifyResponse(BaseModel):
    result: list[list[list[str | float]]] = Field(
        description="per example, per class: [class name, probability]")


class TFRegressResponse(BaseModel):
    result: list[float] = Field(description="per example: the probability of the positive (last) class")
