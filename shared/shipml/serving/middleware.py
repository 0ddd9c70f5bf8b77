"""One pure-ASGI middleware for what every request needs: request id, API key, rate limit, size limit, metrics, logs.

Pure ASGI (not ``BaseHTTPMiddleware``) because it runs on every request: it reads the headers once,
wraps ``send`` to learn the status, and never buffers the body. It also

* sends the prediction routes (:class:`~shipml.serving.routes_predict.LeanRoute`) straight to their
  handler: FastAPI's router and dependency solving cost more per request than the model;
* answers ``OPTIONS`` with the methods the path really has (``Allow``);
* counts a client that went away before its body arrived as status 499 (nginx's "client closed
  request"), logged as such: it is not a server error;
* turns an unexpected error into a JSON 500 that names the request id (the traceback goes to the
  log, never to the client).
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.routing import Match

from shipml.serving.auth import PROBE_PREFIXES, ApiKeys, needs_key
from shipml.serving.errors import ApiError, error_response, from_api_error
from shipml.serving.logs import REQUEST_ID
from shipml.serving.metrics import Metrics
from shipml.serving.ratelimit import RateLimiter

log = logging.getLogger("shipml.serving")

_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
CLIENT_CLOSED = 499  # nginx's status for a client that closed the connection before the answer


class BodyTooLarge(Exception):
    pass


class _Exchange:
    """What the middleware learns about one request while it is served."""

    __slots__ = ("request_id", "status", "started", "id_header")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.status = 500
        self.started = False
        self.id_header = (b"x-request-id", request_id.encode())


class ServingMiddleware:
    def __init__(self, app: Any, *, metrics: Metrics, api_key: str | None, max_request_bytes: int,
                 access_log: str = "errors", slow_request_ms: float = 250.0,
                 lean_routes: list[Any] | None = None,
                 api_keys: ApiKeys | None = None, public_ops: bool = False,
                 rate_limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.lean_routes = lean_routes or []
        # Paths without parameters are found by a dict look-up; the others by matching (TF Serving, v2).
        self._static = {r.path: (r, {"endpoint": r.endpoint, "path_params": {}})
                        for r in self.lean_routes if "{" not in r.path}
        # The others (TF Serving, v2) by their literal prefix, then their regex: a few µs less than asking every
        # route to ``matches`` the scope in turn (v2 infer came after six TF Serving routes).
        self._templated = [(r.path[:r.path.index("{")], r.path_regex, r.param_convertors, r)
                           for r in self.lean_routes if "{" in r.path]
        self.metrics = metrics
        self.keys = api_keys or (ApiKeys([api_key.encode()]) if api_key else None)  # see shipml.serving.auth
        self.public_ops = public_ops
        self.limiter = rate_limiter  # see shipml.serving.ratelimit
        self.max_bytes = max_request_bytes
        self.access_log = access_log
        self.slow_seconds = slow_request_ms / 1000.0
        self._prefix = os.urandom(4).hex()
        self._counter = 0

    def _new_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}-{self._counter:x}"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given_id = length = key = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given_id = value
            elif name == b"content-length":
                length = value
            elif name == b"x-api-key":
                key = value
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                key = key or value[7:].strip()
        ex = _Exchange(given_id.decode() if given_id and _SAFE_ID.match(given_id) else self._new_id())
        scope["shipml.request_id"] = ex.request_id
        scope["shipml.exchange"] = ex
        token = REQUEST_ID.set(ex.request_id)

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                ex.status, ex.started = message["status"], True
                message["headers"] = [*message.get("headers", ()), ex.id_header]
            await send(message)

        try:
            refusal = self._refuse(scope, key, length)
            if refusal is not None:
                status, message, headers = refusal
                await self._send_error(scope, receive, send_with_id, status, message, headers)
            else:
                await self.dispatch(scope, receive if length is not None else self._limited(receive), send_with_id,
                                    send)
        except BodyTooLarge:
            await self._send_error(scope, receive, send_with_id, 413, f"request body larger than {self.max_bytes} "
                                   "bytes (SHIPML_MAX_REQUEST_BYTES)")
        except ClientDisconnect:
            ex.status = CLIENT_CLOSED  # nothing can be sent: the client is gone
        except Exception:
            log.exception("unexpected error while serving a request",
                          extra={"method": scope["method"], "path": scope["path"]})
            await self._send_error(scope, receive, send_with_id, 500, "internal error; the server log has the "
                                   f"details (request id {ex.request_id})")
        finally:
            self._record(scope, ex, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    async def dispatch(self, scope: dict, receive: Any, send: Any, raw_send: Any) -> None:
        """Prediction routes straight to their handler, OPTIONS answered here, the rest to the app.

        ``send`` adds the request id and learns the status; a prediction route's answer is a ready
        :class:`Response`, so the id is added to it and it goes to the server's ``raw_send`` directly."""
        method = scope["method"]
        if method == "POST":
            path = scope["path"]
            found = self._static.get(path)
            if found is None:
                for prefix, regex, convertors, candidate in self._templated:  # every lean route is POST only
                    if path.startswith(prefix) and (m := regex.match(path)) is not None:
                        params = {k: convertors[k].convert(v) for k, v in m.groupdict().items()}
                        found = (candidate, {"endpoint": candidate.endpoint, "path_params": params})
                        break
            if found is not None:
                route, child = found
                scope.update(child)
                scope["route"] = route
                request = Request(scope, receive)
                try:
                    response = await route.endpoint(request)
                except ApiError as exc:
                    response = from_api_error(exc, scope["shipml.request_id"])
                ex = scope["shipml.exchange"]
                response.raw_headers.append(ex.id_header)
                ex.status, ex.started = response.status_code, True
                await response(scope, receive, raw_send)
                return
        elif method == "OPTIONS" and not _is_preflight(scope):
            await self._options(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _options(self, scope: dict, receive: Any, send: Any) -> None:
        methods: set[str] = set()
        for route in flat_routes(scope["app"].router.routes):
            route_methods = getattr(route, "methods", None)
            if route_methods and route.matches(scope)[0] is not Match.NONE:
                methods |= route_methods
        if not methods:
            await self._send_error(scope, receive, send, 404, f"no such endpoint: {scope['path'][:200]} (see /docs)")
            return
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", allow.encode())]})
        await send({"type": "http.response.body", "body": b""})

    async def _send_error(self, scope: dict, receive: Any, send: Any, status: int, message: str,
                          headers: dict[str, str] | None = None) -> None:
        if scope["shipml.exchange"].started:  # too late for an error body: the answer is on its way
            return
        await error_response(status, message, scope["shipml.request_id"], headers=headers)(scope, receive, send)

    def _record(self, scope: dict, ex: _Exchange, seconds: float) -> None:
        route = scope.get("route")
        label = getattr(route, "path_format", None) or ("unmatched" if ex.status in (404, 405) else "none")
        self.metrics.observe_request(label, scope["method"], ex.status, seconds)
        if ex.status == CLIENT_CLOSED:
            log.info("client closed the connection before the request was read",
                     extra={"request_id": ex.request_id, "method": scope["method"], "path": scope["path"],
                            "route": label, "status": ex.status})
        elif self.access_log == "all" or (self.access_log == "errors" and (
                ex.status >= 400 or seconds > self.slow_seconds)):
            log.log(logging.WARNING if ex.status >= 500 else logging.INFO, "request",
                    extra={"request_id": ex.request_id, "method": scope["method"], "path": scope["path"],
                           "route": label, "status": ex.status, "ms": round(seconds * 1000, 3)})

    def _refuse(self, scope: dict, key: bytes | None, length: bytes | None) -> tuple[int, str, dict] | None:
        caller = None
        if self.keys is not None and scope["method"] != "OPTIONS" and needs_key(scope["path"], self.public_ops):
            if key is None:
                return 401, "missing API key: send it in the X-API-Key header", {
                    "www-authenticate": 'Bearer realm="shipml"'}
            caller = self.keys.match(key)
            if caller is None:
                return 401, "wrong API key", {"www-authenticate": 'Bearer realm="shipml"'}
            scope["shipml.caller"] = caller  # the key's id: who is calling (rollouts keep a caller on one side)
        if self.limiter is not None and not scope["path"].startswith(PROBE_PREFIXES):
            wait = self.limiter.allow(caller or (scope.get("client") or ("?",))[0])
            if wait:
                return 429, "too many requests: slow down (SHIPML_RATE_LIMIT per key)", {
                    "retry-after": RateLimiter.retry_after(wait)}
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return 400, "Content-Length is not a number", {}
            if n > self.max_bytes:
                return 413, f"request body of {n} bytes is larger than {self.max_bytes} (SHIPML_MAX_REQUEST_BYTES)", {}
        return None

    def _limited(self, receive: Any) -> Any:
        """``receive`` that counts body bytes (chunked uploads have no Content-Length)."""
        seen = 0
        limit = self.max_bytes

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        return counted


def flat_routes(routes: list[Any]) -> list[Any]:
    """Every route, with included routers opened up (FastAPI keeps them nested)."""
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out.extend(flat_routes(inner.routes) if inner is not None else [route])
    return out


def _is_preflight(scope: dict) -> bool:
    """A CORS preflight (answered by the CORS middleware when CORS is on)."""
    names = {name for name, _ in scope["headers"]}
    return b"origin" in names and b"access-control-request-method" in names
