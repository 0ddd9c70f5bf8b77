"""``/docs`` that works offline, and an OpenAPI schema that shows the models' real request bodies.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN: on a laptop without internet, in an air-
gapped cluster or behind a strict proxy it stays blank. The JavaScript and CSS ship in the pinned
``swagger-ui-bundle-v2`` wheel; the app serves them under ``/docs/static``.

The hot routes read their body themselves (see :mod:`shipml.serving.routes_predict`), so FastAPI does not
know their request models; :func:`build_openapi` adds them: the generated record and batch models of the
default model, TF Serving's and v2's request shapes, and the API-key scheme when a key is set.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shipml import __version__

DESCRIPTION = """A model server from the **shipml** teaching kit.

* `POST /predict`, `POST /predict/batch`: the kit's typed API (the body schema is generated from the model bundle);
* `/v1/models/...`: TensorFlow Serving's REST API; `/v2/...`: the Open Inference Protocol (KServe, Triton);
* `/metrics`: Prometheus; `/v2/health/live`, `/v2/health/ready`: liveness and readiness.

Every error is `{"error": "..."}` with a 4xx status that names the problem."""


def swagger_assets() -> Any:
    from swagger_ui_bundle import swagger_ui_path

    return swagger_ui_path


def add_docs(app: FastAPI) -> None:
    """Serve Swagger UI and its assets from the app itself (no CDN)."""
    app.mount("/docs/static", StaticFiles(directory=str(swagger_assets())), name="swagger-static")

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json", title="shipml model server",
            swagger_js_url=f"{root}/docs/static/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/static/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/static/favicon-32x32.png",
            swagger_ui_parameters={"tryItOutEnabled": True, "displayRequestDuration": True},
        )


def _schemas(models: dict[str, type[BaseModel]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(refs by key, component schemas) for pydantic models, with OpenAPI-style $refs."""
    keyed = [(m, "validation") for m in models.values()]
    refs, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    by_key = {key: refs[(m, "validation")] for key, m in models.items()}
    return by_key, defs.get("$defs", {})


# During a canary rollout a client that sends this header always lands on the same version (serving/rollout).
CLIENT_KEY_PARAMETER = {"name": "X-Client-Key", "in": "header", "required": False, "schema": {"type": "string"},
                        "description": "during a canary rollout, requests with the same key are answered by the "
                                       "same version (sticky); without it the API key's id is used, else a coin"}
PER_MODEL_BODIES = {"tf": "tf", "tf_examples": "tf_examples", "v2": "v2"}  # x-shipml-body key -> codec attribute


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, cached per repository generation (a reload may change the models).

    ``/predict`` documents the default model's record. The TF Serving and v2 prediction routes take a
    different body per model, so they are documented once per served model, with the model's name in
    the path (``/v2/models/fraud-lr/infer``): each with exactly the body the server validates.
    """
    repo = getattr(app.state, "repository", None)
    generation = repo.generation if repo is not None else -1
    cached = getattr(app.state, "openapi_cache", None)
    if cached and cached[0] == generation:
        return cached[1]
    doc = get_openapi(title="shipml model server", version=__version__, description=DESCRIPTION,
                      routes=app.routes)
    try:
        default = repo.default() if repo is not None else None
    except Exception:  # nothing loaded yet: the generic shapes only
        default = None
    served = {name: repo.get(name) for name in repo.names()} if repo is not None else {}
    bodies: dict[str, type[BaseModel]] = {}
    if default is not None:
        bodies["record"], bodies["batch"] = default.codec.record, default.codec.batch
    for name, m in served.items():
        for key, attr in PER_MODEL_BODIES.items():
            bodies[f"{key}:{name}"] = getattr(m.codec, attr)
    refs, defs = _schemas(bodies) if bodies else ({}, {})
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs)
    paths = doc.get("paths", {})
    for path in list(paths):
        item = paths[path]
        for method, op in list(item.items()):
            key = op.pop("x-shipml-body", None) if isinstance(op, dict) else None
            if key is None:
                continue
            op.setdefault("parameters", []).append(CLIENT_KEY_PARAMETER)  # every prediction route takes it
            if key not in PER_MODEL_BODIES:
                op["requestBody"] = _body(refs.get(key, {"type": "object"}))
                continue
            if not served:
                op["requestBody"] = _body({"type": "object"})
                continue
            del item[method]
            for name in sorted(served):
                concrete = path.replace("{name}", name)
                copy = {**op, "operationId": f"{op.get('operationId', method)}_{_slug(name)}",
                        "parameters": [p for p in op.get("parameters", []) if p.get("name") != "name"],
                        "requestBody": _body(refs[f"{key}:{name}"])}
                if not copy["parameters"]:
                    del copy["parameters"]
                paths.setdefault(concrete, {})[method] = copy
        if not item:
            del paths[path]
    _document_api_key(doc, getattr(app.state, "settings", None))
    app.state.openapi_cache = (generation, doc)
    return doc


def _document_api_key(doc: dict[str, Any], settings: Any) -> None:
    """A server started with an API key says so in its document: the key in X-API-Key or as a Bearer token
    (either one), so generated clients send it."""
    if settings is None or settings.api_key is None:
        return
    doc["components"]["securitySchemes"] = {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "Bearer": {"type": "http", "scheme": "bearer", "description": "the same key as `Authorization: Bearer`"}}
    doc["security"] = [{"ApiKey": []}, {"Bearer": []}]  # either one


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
