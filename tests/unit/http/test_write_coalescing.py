"""A response's head leaves with its body in one write; a head alone is late by one loop
turn at most, and nothing is lost or reordered (token_service/http/write_coalescing.py).

Writes are counted by a transport that touches no socket: each `write` call to it would
be one `send` system call on a real one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from tests.support.socketless import SocketlessTransport
from token_service.http.head_limits import BoundedHttpToolsProtocol, ConnectionTimeouts
from token_service.http.write_coalescing import (
    MAX_HELD_BYTES,
    CoalescingTransport,
    is_response_head,
)

HEAD = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n"
BODY = b"ok"


class Recording(SocketlessTransport):
    """Keeps each write apart, and what came after it (end of file, close, abort)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[bytes | str] = []
        self.closing = False
        self.buffered = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.events.append(bytes(data))

    def write_eof(self) -> None:
        self.events.append("eof")

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


async def next_turn() -> None:
    """Let callbacks scheduled with `call_soon` run."""
    for _ in range(3):
        await asyncio.sleep(0)


def coalescing() -> tuple[CoalescingTransport, Recording]:
    inner = Recording()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner


async def test_a_head_and_the_body_after_it_are_one_write() -> None:
    transport, inner = coalescing()
    transport.write(HEAD)
    transport.write(BODY)
    assert inner.events == [HEAD + BODY]


async def test_a_head_with_no_write_after_it_goes_out_at_the_next_turn() -> None:
    transport, inner = coalescing()
    transport.write(HEAD)
    assert inner.events == []
    await next_turn()
    assert inner.events == [HEAD]


async def test_a_head_sent_alone_is_not_sent_again_with_the_next_write() -> None:
    transport, inner = coalescing()
    transport.write(HEAD)
    await next_turn()
    transport.write(BODY)
    await next_turn()
    assert inner.events == [HEAD, BODY]


async def test_a_write_that_is_no_head_goes_out_at_once() -> None:
    transport, inner = coalescing()
    transport.write(BODY)
    transport.write(b"HTTP/1.1 200 OK\r\n")  # no blank line: not a whole head
    assert inner.events == [BODY, b"HTTP/1.1 200 OK\r\n"]


@pytest.mark.parametrize(("ending", "event"), [("close", "close"), ("write_eof", "eof")])
async def test_close_and_end_of_file_send_the_held_head_first(ending: str, event: str) -> None:
    transport, inner = coalescing()
    transport.write(HEAD)
    getattr(transport, ending)()
    await next_turn()
    assert inner.events == [HEAD, event]


async def test_abort_drops_the_held_head() -> None:
    transport, inner = coalescing()
    transport.write(HEAD)
    transport.abort()
    await next_turn()
    assert inner.events == ["abort"]


async def test_a_head_is_not_held_for_a_closing_transport() -> None:
    transport, inner = coalescing()
    inner.closing = True
    transport.write(HEAD)
    assert inner.events == [HEAD]


async def test_held_bytes_count_in_the_write_buffer_size() -> None:
    transport, inner = coalescing()
    inner.buffered = 100
    transport.write(HEAD)
    assert transport.get_write_buffer_size() == 100 + len(HEAD)


async def test_writelines_is_one_write() -> None:
    transport, inner = coalescing()
    transport.writelines([HEAD, BODY])
    assert inner.events == [HEAD + BODY]


def test_only_a_whole_head_of_bounded_size_is_held() -> None:
    assert is_response_head(HEAD)
    assert not is_response_head(BODY)
    assert not is_response_head(b"GET / HTTP/1.1\r\n\r\n")
    huge = b"HTTP/1.1 200 OK\r\nx: " + b"a" * MAX_HELD_BYTES + b"\r\n\r\n"
    assert not is_response_head(huge)


# -- through the service's HTTP protocol ---------------------------------------------


def protocol(app: Any) -> tuple[BoundedHttpToolsProtocol, Recording]:
    config = uvicorn.Config(app, log_config=None)
    timeouts = ConnectionTimeouts(head_seconds=10.0, body_seconds=10.0, send_seconds=10.0)
    served = BoundedHttpToolsProtocol(
        config=config,
        server_state=ServerState(),
        app_state={},
        _loop=asyncio.get_running_loop(),
        timeouts=timeouts,
    )
    inner = Recording()
    served.connection_made(inner)
    return served, inner


async def answer_whole(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": BODY})


async def answer_streamed(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]}
    )
    await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"ab", "more_body": True})
    await send({"type": "http.response.body", "body": b"cd"})


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


async def served(app: Any, requests: int = 1) -> Recording:
    """What the protocol wrote to its transport after `requests` keep-alive GETs."""
    answering, inner = protocol(app)
    for _ in range(requests):
        answering.data_received(GET)
        await settle()
    return inner


async def test_the_protocol_writes_an_answer_sent_whole_once() -> None:
    inner = await served(answer_whole)
    (written,) = inner.events
    assert isinstance(written, bytes)
    assert written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert written.endswith(b"\r\n\r\nok")


async def test_the_protocol_sends_a_streamed_answers_head_before_its_body() -> None:
    inner = await served(answer_streamed)
    (head,) = inner.events
    assert isinstance(head, bytes)
    assert head.endswith(b"\r\n\r\n")
    await asyncio.sleep(0.05)
    assert inner.events[1:] == [b"ab", b"cd"]


async def test_two_keep_alive_answers_are_two_writes() -> None:
    inner = await served(answer_whole, requests=2)
    assert len(inner.events) == 2
    assert all(isinstance(e, bytes) and e.endswith(b"\r\n\r\nok") for e in inner.events)
