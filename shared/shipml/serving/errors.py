"""The one error type of the server, and the one place its JSON body is rendered.

Every refusal — from a route, a validation error, the router's 404/405, the middleware's 401/413/500 —
goes through :func:`error_response`: ``{"error": "...", "detail": [...], "request_id": "..."}`` with
the status, so clients and dashboards see one shape whoever refused.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json
from starlette.responses import Response

from shipml.errors import ShipmlError


class ApiError(ShipmlError):
    """A request the server refuses: ``status`` is the HTTP status (4xx, or 503 while loading)."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or []
        self.headers = headers or {}


def error_response(status: int, message: str, request_id: str | None, detail: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The JSON error body every part of the server answers with."""
    body: dict[str, Any] = {"error": message}
    if detail:
        body["detail"] = detail
    body["request_id"] = request_id
    return Response(to_json(body), status_code=status, media_type="application/json", headers=headers)


def from_api_error(exc: ApiError, request_id: str | None) -> Response:
    return error_response(exc.status, exc.message, request_id, exc.detail, exc.headers)
