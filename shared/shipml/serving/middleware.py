"""One pure-ASGI middleware for what every request needs: request id, API key, size limit, metrics, logs.

Pure ASGI (not ``BaseHTTPMiddleware``) because it runs on every request: it reads the headers once,
wraps ``send`` to learn the status, and never buffers the body. It also turns an unexpected error into
a JSON 500 that names the request id (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from shipml.serving.auth import PROBE_PREFIXES, ApiKeys, needs_key
from shipml.serving.logs import REQUEST_ID
from shipml.serving.metrics import Metrics
from shipml.serving.ratelimit import RateLimiter

log = logging.getLogger("shipml.serving")

_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
_JSON = (b"content-type", b"application/json")


class BodyTooLarge(Exception):
    pass


def json_error(status: int, message: str, request_id: str, extra_headers: tuple = ()) -> tuple[dict, dict]:
    import json

    body = json.dumps({"error": message, "request_id": request_id}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [_JSON, (b"content-length", str(len(body)).encode()), *extra_headers]}
    return start, {"type": "http.response.body", "body": body}


class ServingMiddleware:
    def __init__(self, app: Any, *, metrics: Metrics, api_key: str | None, max_request_bytes: int,
                 access_log: str = "errors", slow_request_ms: float = 250.0,
                 fast_routes: dict[tuple[str, str], tuple[Any, Any]] | None = None,
                 api_keys: ApiKeys | None = None, public_ops: bool = False,
                 rate_limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.fast_routes = fast_routes if fast_routes is not None else {}
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
        request_id = given_id.decode() if given_id and _SAFE_ID.match(given_id) else self._new_id()
        scope["shipml.request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        id_header = (b"x-request-id", request_id.encode())
        state = [500, False]  # status, response started

        async def send_with_id(message: dict) -> None:
            if message["type"] == "http.response.start":
                state[0], state[1] = message["status"], True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            refusal = self._refuse(scope, key, length)
            if refusal is not None:
                status, message, headers = refusal
                start, body = json_error(status, message, request_id, (id_header, *headers))
                state[0], state[1] = status, True
                await send(start)
                await send(body)
                return
            app_receive = receive if length is not None else self._limited(receive)
            fast = self.fast_routes.get((scope["method"], scope["path"]))
            if fast is not None:  # a hot route: straight to its handler, past the router
                scope["route"] = fast[0]
                await fast[1](scope, app_receive, send_with_id)
            else:
                await self.app(scope, app_receive, send_with_id)
        except BodyTooLarge:
            if not state[1]:
                start, body = json_error(413, f"request body larger than {self.max_bytes} bytes "
                                              "(SHIPML_MAX_REQUEST_BYTES)", request_id, (id_header,))
                state[0], state[1] = 413, True
                await send(start)
                await send(body)
        except Exception:
            log.exception("unexpected error while serving a request",
                          extra={"method": scope["method"], "path": scope["path"]})
            if not state[1]:
                start, body = json_error(500, f"internal error; the server log has the details "
                                              f"(request id {request_id})", request_id, (id_header,))
                state[0], state[1] = 500, True
                await send(start)
                await send(body)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            label = getattr(route, "path", None) or ("unmatched" if state[0] in (404, 405) else "none")
            self.metrics.observe_request(label, scope["method"], state[0], seconds)
            if self.access_log == "all" or (self.access_log == "errors" and (
                    state[0] >= 400 or seconds > self.slow_seconds)):
                log.log(logging.WARNING if state[0] >= 500 else logging.INFO, "request",
                        extra={"request_id": request_id, "method": scope["method"], "path": scope["path"],
                               "route": label, "status": state[0], "ms": round(seconds * 1000, 3)})
            REQUEST_ID.reset(token)

    def _refuse(self, scope: dict, key: bytes | None, length: bytes | None) -> tuple[int, str, tuple] | None:
        caller = None
        if self.keys is not None and scope["method"] != "OPTIONS" and needs_key(scope["path"], self.public_ops):
            if key is None:
                return 401, "missing API key: send it in the X-API-Key header", (
                    (b"www-authenticate", b'Bearer realm="shipml"'),)
            caller = self.keys.match(key)
            if caller is None:
                return 401, "wrong API key", ((b"www-authenticate", b'Bearer realm="shipml"'),)
        if self.limiter is not None and not scope["path"].startswith(PROBE_PREFIXES):
            wait = self.limiter.allow(caller or (scope.get("client") or ("?",))[0])
            if wait:
                return 429, "too many requests: slow down (SHIPML_RATE_LIMIT per key)", (
                    (b"retry-after", RateLimiter.retry_after(wait).encode()),)
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return 400, "Content-Length is not a number", ()
            if n > self.max_bytes:
                return 413, f"request body of {n} bytes is larger than {self.max_bytes} (SHIPML_MAX_REQUEST_BYTES)", ()
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
