"""uvicorn's httptools protocol with a header timeout: a silent or slow client cannot hold a socket.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but a connection that
never sends a request (or sends its headers a byte at a time) is kept open for ever: the open-file
limit is the only bound. Here every request's headers must be complete within
``SHIPML_HEADER_TIMEOUT`` seconds of the connection opening or of the previous answer; otherwise the
connection is closed. Bodies are bounded by ``SHIPML_MAX_REQUEST_BYTES``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout: float | None = None  # read from the settings at the first connection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        if HeaderTimeoutProtocol.header_timeout is None:
            from shipml.settings import Settings

            HeaderTimeoutProtocol.header_timeout = Settings().header_timeout

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout or 10.0, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
