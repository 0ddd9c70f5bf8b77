"""The one error type of the server: an HTTP status and a message that names the problem."""

from __future__ import annotations

from typing import Any

from shipml.errors import ShipmlError


class ApiError(ShipmlError):
    """A request the server refuses: ``status`` is the HTTP status (4xx, or 503 while loading)."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or []
