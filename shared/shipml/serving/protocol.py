"""uvicorn's httptools protocol with a header and a body timeout: a silent or slow client cannot hold a socket.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but a connection that
never sends a request (or sends its headers a byte at a time) is kept open for ever: the open-file
limit is the only bound. Here every request's headers must be complete within
``SHIPML_HEADER_TIMEOUT`` seconds of the connection opening or of the previous answer; otherwise the
connection is closed. Its body must then be complete within ``SHIPML_BODY_TIMEOUT`` seconds of the
headers: otherwise the request ends there, the route reading it answers 408 with a message
(:func:`shipml.serving.body.read_body`) and the connection is closed. Bodies are bounded by
``SHIPML_MAX_REQUEST_BYTES``.

Both timers are armed only when a request did not arrive whole (after ``data_received`` has parsed
everything it got: headers still incomplete, or a body still missing), so a request sent at once costs no
timer; between requests uvicorn's keep-alive timeout bounds an idle connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shipml.serving.body import BODY_TIMEOUT_KEY


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout: float | None = None  # read from the settings at the first connection
    body_timeout: float | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._headers_open = False  # a request began, its headers are not complete yet
        self._body_open = False  # headers parsed, body not complete yet
        if HeaderTimeoutProtocol.header_timeout is None:
            from shipml.settings import Settings

            settings = Settings()
            HeaderTimeoutProtocol.header_timeout = settings.header_timeout
            HeaderTimeoutProtocol.body_timeout = settings.body_timeout

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

    def _body_too_slow(self) -> None:
        """The body is late: end the request where it is, flagged, so the route answers 408; or close."""
        self._body_timer = None
        cycle = self.cycle
        if not self._body_open or cycle is None or self.transport.is_closing():
            return
        self._body_open = False
        if cycle.response_started:  # answered without reading the body: nobody waits for the rest
            self.transport.close()
            return
        cycle.scope[BODY_TIMEOUT_KEY] = self.body_timeout
        cycle.keep_alive = False  # the rest of the body would be read as the next request
        cycle.more_body = False
        cycle.message_event.set()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._headers_open:
            self._arm()
        elif self._body_open and self._body_timer is None and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self.body_timeout or 30.0, self._body_too_slow)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers_open = True

    def on_headers_complete(self) -> None:
        self._disarm()
        self._headers_open = False
        self._body_open = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_open = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().connection_lost(exc)
