"""Reading a request body the same way on every route: size-limited, decompressed, without a UTF-8 BOM.

``Content-Encoding: gzip`` or ``deflate`` (what ``tritonclient``'s ``request_compression_algorithm``
sends) is decoded, never past ``SHIPML_MAX_REQUEST_BYTES`` of output (a small bomb cannot fill the
memory); any other encoding is a 415. A leading UTF-8 byte order mark is dropped (RFC 8259 lets a
parser ignore it; Windows tools add one), so the three protocols agree on it. A body that did not
arrive within ``SHIPML_BODY_TIMEOUT`` s of its headers (a client trickling it) is a 408
(:mod:`shipml.serving.protocol` ends the request and flags it).
"""

from __future__ import annotations

import zlib

from starlette.requests import ClientDisconnect, Request

from shipml.serving.errors import ApiError

BOM = b"\xef\xbb\xbf"
BODY_TIMEOUT_KEY = "shipml.body_timeout"  # set in a request's scope when its body timed out: the seconds allowed
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded from ``encoding`` (gzip, deflate: zlib or raw), at most ``limit`` bytes."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return body
    wbits = ENCODINGS.get(name)
    if wbits is None:
        raise ApiError(415, f"Content-Encoding '{encoding[:40]}' is not supported; send gzip, deflate or "
                            "an uncompressed body", headers={"Accept-Encoding": "gzip, deflate"})
    try:
        try:
            decoder = zlib.decompressobj(wbits)
            out = decoder.decompress(body, limit + 1)
        except zlib.error:
            if name != "deflate":
                raise
            decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # deflate without the zlib header, as some clients send
            out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, f"the body is not valid {name} data ({exc})") from None
    if len(out) > limit or decoder.unconsumed_tail:
        raise ApiError(413, f"the decompressed body is larger than {limit} bytes (SHIPML_MAX_REQUEST_BYTES)")
    return out


async def receive_body(request: Request) -> bytes:
    """The raw body, straight from the ASGI messages: what ``await request.body()`` returns, without the async
    generator Starlette builds for every request (its hooks cost more than the rest of reading a small body)."""
    if hasattr(request, "_body"):  # already read (Starlette's cache)
        return request._body
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    request._body = body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return body


async def read_body(request: Request) -> bytes:
    """The request body, decompressed and without a BOM."""
    body = await receive_body(request)
    if BODY_TIMEOUT_KEY in request.scope:
        raise ApiError(408, f"the request body did not arrive within {request.scope[BODY_TIMEOUT_KEY]:g} s of its "
                            "headers (SHIPML_BODY_TIMEOUT); send the whole body at once")
    for name, value in request.scope["headers"]:  # ASGI names are lower-case; no Headers object per request
        if name == b"content-encoding" and value:
            body = decompress(body, value.decode("latin-1"), request.app.state.settings.max_request_bytes)
            break
    if body.startswith(BOM):
        body = body[3:]
    return body
