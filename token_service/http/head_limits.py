"""A bound on the size of a request's head (request line plus headers) for uvicorn.

uvicorn's httptools protocol has no such limit, and building a huge header costs the
worker's event loop more than linear time: measured on this service, a 32 MiB header
stalled every other request of the worker for 1.7 s and a 64 MiB one took 17 s. This
protocol counts the bytes of each request head as they arrive and, past
`MAX_HEAD_BYTES`, answers 431 (RFC 6585) and closes the connection before the
parser has buffered more.

Only the head is counted: body bytes that arrive in the same read as the end of the
headers are left to the application's body limit (413).

Closing at once, with the client still sending, would make the kernel reset the
connection and the client would often lose the 431. So, like nginx's lingering
close, the answer is sent with a FIN and what still arrives is read and dropped (never
parsed), for at most `LINGER_SECONDS` or `LINGER_MAX_BYTES`, whichever comes first.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

# A private module of uvicorn, checked against uvicorn 0.55.0 with httptools 0.9.0: uvicorn
# bounds incomplete events only on its h11 protocol (`h11_max_incomplete_event_size`), and
# no public option bounds a request head on the httptools one. This module is the only user;
# tests/packaging/test_library_internals.py fails when the hooks overridden here change.
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from token_service.http.problem_json import PROBLEM_JSON, problem_bytes

#: Far above any real request to this API (the bearer token alone is capped at 8 KiB),
#: and at the size of common proxies' limits (nginx's default is 4 x 8 KiB).
MAX_HEAD_BYTES: Final = 64 * 1024
#: How long, and how much, a refused client may still send before the connection closes.
LINGER_SECONDS: Final = 5.0
LINGER_MAX_BYTES: Final = 64 * 1024 * 1024
_END_OF_HEAD: Final = b"\r\n\r\n"
_PROBLEM: Final = problem_bytes(
    431,
    title="Request header fields too large",
    detail=f"the request line and headers exceed {MAX_HEAD_BYTES // 1024} KiB",
    code="request-head-too-large",
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over `MAX_HEAD_BYTES`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        #: Bytes dropped since the refusal; None until a request is refused.
        self._dropped: int | None = None
        self._linger: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._dropped is not None:
            self._dropped += len(data)
            if self._dropped > LINGER_MAX_BYTES:
                self.transport.close()
            return
        if self._in_head:
            end = data.find(_END_OF_HEAD)
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse()
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next request on this keep-alive connection starts with a new head.
        self._in_head = True
        self._head_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
        super().connection_lost(exc)

    def _refuse(self) -> None:
        self._in_head = False
        self._dropped = 0
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n"
            b"content-length: " + str(len(_PROBLEM)).encode() + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self.transport.write(head + _PROBLEM)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER_SECONDS, self.transport.close)
