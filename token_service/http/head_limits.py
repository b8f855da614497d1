"""Bounds uvicorn's httptools protocol lacks: the size of a request's head, and how long a
client may take to send a request or to read the answer.

Size. uvicorn's httptools protocol has no limit on a request head, and building a huge
header costs the worker's event loop more than linear time: measured on this service, a
32 MiB header stalled every other request of the worker for 1.7 s and a 64 MiB one took
17 s. This protocol counts the bytes of each request head as they arrive and, past
`MAX_HEAD_BYTES`, answers 431 (RFC 6585) and closes the connection before the parser has
buffered more. Only the head is counted: body bytes that arrive in the same read as the
end of the headers are left to the application's body limit (413).

Time. uvicorn closes a connection idle between two requests after `timeout_keep_alive`,
but not one that never sent a first request, and nothing bounds how long a head or a
body may take to arrive, nor how long a client may leave an answer unread: a head sent
a byte at a time held its connection for as long as the client liked. Here, with the
bounds of `ConnectionTimeouts`:

- idle: a connection that has sent nothing yet is closed after the keep-alive timeout,
  like one idle between requests, and without an answer (no request was made; nginx
  does the same). Not the head timeout: a browser's or a balancer's pre-opened
  connection may wait a while before its first request, and a client that sends one
  trivial request earns the keep-alive time anyway;
- head: from the first byte of a request, its line and headers must arrive within
  `head_seconds`. The time a kept-alive connection sat idle before that byte does not
  count, so a client pacing its requests within the keep-alive time is never cut;
- body: from the end of the head, the whole body must arrive within `body_seconds`. A
  total, not a bound between chunks: a body trickled a byte at a time (slow loris)
  never trips a bound between chunks, and every body this service takes is at most
  16 KiB;
- send: while the client leaves the answer unread (the transport's buffer above its
  high-water mark, uvicorn waiting to write more), at most `send_seconds` per stall;
  then the connection is aborted (a close would wait for the unread bytes forever).

A head or body timeout answers 408 (problem+json) when nothing is being written on the
connection, and otherwise only closes it (a 408 written then would corrupt the answer in
progress). Timers are armed only once a read has been parsed and left a request
unfinished: a request that arrives in one read (nearly all) arms none.

Closing at once, with the client still sending, would make the kernel reset the
connection and the client would often lose the 431 or 408. So, like nginx's lingering
close, the answer is sent with a FIN and what still arrives is read and dropped (never
parsed), for at most `LINGER_SECONDS` or `LINGER_MAX_BYTES`, whichever comes first.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

# A private module of uvicorn, checked against uvicorn 0.55.0 with httptools 0.9.0: uvicorn
# bounds incomplete events only on its h11 protocol (`h11_max_incomplete_event_size`), no
# public option bounds a request head on the httptools one, and none bounds the time a
# head or body takes. This module is the only user; tests/packaging/test_library_internals.py
# fails when the hooks overridden here change.
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from token_service.http.problem_json import PROBLEM_JSON, problem_bytes
from token_service.http.write_coalescing import CoalescingTransport

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ConnectionTimeouts:
    """How long a client may take to send a request's head, then its body, and how long
    it may leave an answer unread (the idle bound is uvicorn's `timeout_keep_alive`)."""

    head_seconds: float
    body_seconds: float
    send_seconds: float


class _Reading(enum.Enum):
    #: Between requests (or before the first): only the keep-alive timer runs.
    IDLE = "idle"
    HEAD = "head"
    BODY = "body"


def bounded_protocol(timeouts: ConnectionTimeouts) -> Callable[..., asyncio.Protocol]:
    """uvicorn's `http` protocol factory with these timeouts. uvicorn calls it with
    (config, server_state, app_state, _loop); a partial of a module-level class pickles,
    so spawned workers get the same bounds."""
    return functools.partial(BoundedHttpToolsProtocol, timeouts=timeouts)


@functools.lru_cache(maxsize=8)
def _timeout_answer(part: str, seconds: float) -> bytes:
    body = problem_bytes(
        408,
        title="Request timeout",
        detail=f"the request {part} did not arrive within {seconds:g} s",
        code="request-timeout",
    )
    return _closing_answer(b"408 Request Timeout", body)


def _closing_answer(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: " + PROBLEM_JSON.encode() + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


_HEAD_TOO_LARGE: Final = _closing_answer(b"431 Request Header Fields Too Large", _PROBLEM)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over `MAX_HEAD_BYTES` and
    bounding the time to receive a request and to send its answer."""

    def __init__(self, *args: Any, timeouts: ConnectionTimeouts, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeouts = timeouts
        self._head_bytes = 0
        self._in_head = True
        self._reading = _Reading.IDLE
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        #: Bytes dropped since the refusal; None until a request is refused.
        self._dropped: int | None = None
        self._linger: asyncio.TimerHandle | None = None
        #: The request whose app task was started last: the one being answered.
        self._answering: RequestResponseCycle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # One write per answer, head and body together (see `write_coalescing`).
        super().connection_made(CoalescingTransport(transport, self.loop))
        # uvicorn arms its keep-alive timer only after a response: a connection that never
        # sends a byte would otherwise stay open for good.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

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
                self._answer_and_close(_HEAD_TOO_LARGE)
                return
        if self._reading is _Reading.IDLE and data:
            # The first byte starts the head's clock, even bytes the parser skips (blank
            # lines): otherwise a CRLF now and then would keep a connection forever.
            self._reading = _Reading.HEAD
        super().data_received(data)
        if self.transport.is_closing():
            return
        # Arm a timer only for a request this read left unfinished.
        if self._reading is _Reading.HEAD and self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self._timeouts.head_seconds, self._head_timed_out
            )
        elif self._reading is _Reading.BODY and self._body_timer is None:
            self._body_timer = self.loop.call_later(
                self._timeouts.body_seconds, self._body_timed_out
            )

    def on_message_begin(self) -> None:
        # A pipelined request starting in the same read as the end of the previous one.
        self._reading = _Reading.HEAD
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._reading = _Reading.BODY
        _cancel(self._head_timer)
        self._head_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next request on this keep-alive connection starts with a new head.
        self._in_head = True
        self._head_bytes = 0
        self._reading = _Reading.IDLE
        _cancel(self._body_timer)
        self._body_timer = None

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(
                self._timeouts.send_seconds, self._send_timed_out
            )

    def resume_writing(self) -> None:
        super().resume_writing()
        _cancel(self._send_timer)
        self._send_timer = None

    def timeout_keep_alive_handler(self) -> None:
        # What the client has not read in all that time it will not read: a plain close
        # would wait for those bytes to be delivered forever.
        self._hang_up()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._answering = cycle
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._linger, self._head_timer, self._body_timer, self._send_timer):
            _cancel(timer)
        # uvicorn tells only `cycle`, the request parsed last, that the client is gone;
        # with pipelined requests the one being answered is an earlier one, which would
        # then write on the closed transport (and log an error) once its wait to write ends.
        answering = self._answering
        if answering is not None and not answering.response_complete:
            answering.disconnected = True
            answering.message_event.set()
        super().connection_lost(exc)

    # -- timeouts --------------------------------------------------------------------

    def _head_timed_out(self) -> None:
        self._head_timer = None
        # During a head, `cycle` is the previous request's: its answer may be being written.
        writing = bool(self.pipeline) or (
            self.cycle is not None and not self.cycle.response_complete
        )
        self._timed_out("head", self._timeouts.head_seconds, answer=not writing)

    def _body_timed_out(self) -> None:
        self._body_timer = None
        # This request's answer started (a 401 before the body was read, say), or an
        # earlier pipelined one is still being written.
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is None:  # an upgrade, which has no cycle (and no upgrade is served)
            self._hang_up()
            return
        writing = bool(self.pipeline) or cycle.response_started
        if not writing:
            # The app is told the client went away, and cannot write after the 408.
            cycle.disconnected = True
            cycle.message_event.set()
        self._timed_out("body", self._timeouts.body_seconds, answer=not writing)

    def _timed_out(self, part: str, seconds: float, *, answer: bool) -> None:
        if self.transport.is_closing():
            return
        log.info(
            "request %s not received in time",
            part,
            extra={"event": "request_timeout", "part": part, "timeoutSeconds": seconds},
        )
        if answer:
            self._answer_and_close(_timeout_answer(part, seconds))
        else:
            self._hang_up()

    def _send_timed_out(self) -> None:
        self._send_timer = None
        log.info(
            "client did not read the answer in time",
            extra={
                "event": "request_timeout",
                "part": "send",
                "timeoutSeconds": self._timeouts.send_seconds,
            },
        )
        self.transport.abort()

    def _hang_up(self) -> None:
        """Close; abort instead while bytes are still unsent (a close would wait for the
        client to read them, however long that takes)."""
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        elif not self.transport.is_closing():
            self.transport.close()

    def _answer_and_close(self, answer: bytes) -> None:
        """Write `answer` (which says `connection: close`), then drop what still arrives
        until the linger ends."""
        self._in_head = False
        self._reading = _Reading.IDLE
        _cancel(self._head_timer)
        self._head_timer = None
        _cancel(self._body_timer)
        self._body_timer = None
        self._dropped = 0
        self.transport.write(answer)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger = self.loop.call_later(LINGER_SECONDS, self._hang_up)


def _cancel(timer: asyncio.TimerHandle | None) -> None:

    if timer is not None:
        timer.cancel()
