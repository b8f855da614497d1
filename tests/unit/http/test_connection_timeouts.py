"""Which timer runs when, in the service's HTTP protocol, and what each does when it fires.

The protocol is driven by hand: bytes are fed as reads, its timers fire when a test says
(never by waiting), and what it writes is collected by a transport that touches no socket.
The same behaviour against a real process: tests/security/test_connection_timeouts.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from tests.support.socketless import SocketlessTransport
from token_service.http.head_limits import BoundedHttpToolsProtocol, ConnectionTimeouts

KEEP_ALIVE = 75.0
#: Distinct values, so a test can tell the timers apart by their delay.
TIMEOUTS = ConnectionTimeouts(head_seconds=10.0, body_seconds=20.0, send_seconds=30.0)
HEAD, BODY, SEND = TIMEOUTS.head_seconds, TIMEOUTS.body_seconds, TIMEOUTS.send_seconds

GET = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
POST_HEAD = b"POST /v1 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n"


class Timer:
    def __init__(self, delay: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.delay = delay
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualTimers:
    """The running loop, but `call_later` timers fire only through `fire`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.timers: list[Timer] = []

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(delay, callback, args)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[float]:
        return sorted(t.delay for t in self.timers if not t.cancelled)

    def fire(self, delay: float) -> None:
        (timer,) = [t for t in self.timers if t.delay == delay and not t.cancelled]
        timer.cancelled = True
        timer.callback(*timer.args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


class Transport(SocketlessTransport):
    """Collects what the protocol writes; `unsent` bytes stand for a client not reading."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.eof = False
        self.closed = False
        self.aborted = False
        self.unsent = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class Connection:
    def __init__(self, app: Any) -> None:
        self.timers = ManualTimers(asyncio.get_running_loop())
        config = uvicorn.Config(app, log_config=None, timeout_keep_alive=int(KEEP_ALIVE))
        self.protocol = BoundedHttpToolsProtocol(
            config=config,
            server_state=ServerState(),
            app_state={},
            _loop=self.timers,  # type: ignore[arg-type]
            timeouts=TIMEOUTS,
        )
        self.transport = Transport()
        self.protocol.connection_made(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.data_received(data)

    async def settle(self) -> None:
        """Let the app's tasks run until they wait."""
        for _ in range(20):
            await asyncio.sleep(0)


async def answer_ok(scope: Any, receive: Any, send: Any) -> None:
    while (await receive()).get("more_body"):
        pass
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def problem(written: bytes) -> dict[str, Any]:
    head, _, body = written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in head
    assert b"content-type: application/problem+json" in head
    document: dict[str, Any] = json.loads(body)
    return document


# -- idle ------------------------------------------------------------------------------


async def test_a_new_connection_runs_only_the_keep_alive_timer() -> None:
    connection = Connection(answer_ok)

    assert connection.timers.pending() == [KEEP_ALIVE]


async def test_a_connection_idle_from_the_start_is_closed_without_an_answer() -> None:
    connection = Connection(answer_ok)

    connection.timers.fire(KEEP_ALIVE)

    assert connection.transport.closed
    assert connection.transport.written == b""


async def test_keep_alive_aborts_when_the_client_left_the_last_answer_unread() -> None:
    connection = Connection(answer_ok)
    connection.transport.unsent = 1024

    connection.timers.fire(KEEP_ALIVE)

    assert connection.transport.aborted


# -- head --------------------------------------------------------------------------------


async def test_a_request_in_one_read_arms_no_request_timer() -> None:
    connection = Connection(answer_ok)

    connection.send(GET)

    assert connection.timers.pending() == []


async def test_a_partial_head_runs_the_head_timer() -> None:
    connection = Connection(answer_ok)

    connection.send(GET[:10])

    assert connection.timers.pending() == [HEAD]


async def test_the_head_timer_stops_when_the_head_is_complete() -> None:
    connection = Connection(answer_ok)
    connection.send(GET[:10])

    connection.send(GET[10:])

    assert connection.timers.pending() == []


async def test_a_head_timeout_answers_408_and_closes_lingering() -> None:
    connection = Connection(answer_ok)
    connection.send(GET[:10])

    connection.timers.fire(HEAD)

    document = problem(connection.transport.written)
    assert document["type"].endswith("/request-timeout")
    assert document["detail"] == "the request head did not arrive within 10 s"
    assert connection.transport.eof
    connection.send(GET[10:])
    assert connection.transport.written.count(b"HTTP/1.1") == 1, "late bytes are dropped"


async def test_blank_lines_start_the_head_timer() -> None:
    connection = Connection(answer_ok)

    connection.send(b"\r\n")

    assert connection.timers.pending() == [HEAD]


async def test_the_next_request_head_is_timed_from_its_first_byte() -> None:
    """The idle time after an answer counts against keep-alive, not the next head."""
    connection = Connection(answer_ok)
    connection.send(GET)
    await connection.settle()
    assert connection.transport.written.startswith(b"HTTP/1.1 200 ")
    assert connection.timers.pending() == [KEEP_ALIVE]

    connection.send(GET[:10])

    assert connection.timers.pending() == [HEAD]


async def test_a_head_timeout_while_an_answer_is_written_closes_without_a_408() -> None:
    started = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        started.set()
        await asyncio.Event().wait()

    connection = Connection(slow)
    connection.send(GET + GET[:10])
    await started.wait()

    connection.timers.fire(HEAD)

    assert b"408" not in connection.transport.written
    assert connection.transport.closed


# -- body --------------------------------------------------------------------------------


async def test_a_partial_body_runs_the_body_timer_only() -> None:
    connection = Connection(answer_ok)

    connection.send(POST_HEAD + b"{")

    assert connection.timers.pending() == [BODY]


async def test_the_body_timer_stops_when_the_body_is_complete() -> None:
    connection = Connection(answer_ok)
    connection.send(POST_HEAD + b"{")

    connection.send(b'""}')

    assert connection.timers.pending() == []


async def test_a_body_timeout_answers_408_and_tells_the_app_the_client_left() -> None:
    received: list[Any] = []

    async def reader(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                return

    connection = Connection(reader)
    connection.send(POST_HEAD + b"{")
    await connection.settle()

    connection.timers.fire(BODY)
    await connection.settle()

    document = problem(connection.transport.written)
    assert document["detail"] == "the request body did not arrive within 20 s"
    assert received[-1] == {"type": "http.disconnect"}


async def test_a_body_timeout_after_the_answer_started_closes_without_a_408() -> None:
    async def early(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    connection = Connection(early)
    connection.send(POST_HEAD + b"{")
    await connection.settle()

    connection.timers.fire(BODY)

    assert connection.transport.written.startswith(b"HTTP/1.1 401 ")
    assert b"408" not in connection.transport.written
    assert connection.transport.closed


# -- send --------------------------------------------------------------------------------


async def test_a_full_send_buffer_runs_the_send_timer_until_it_drains() -> None:
    connection = Connection(answer_ok)

    connection.protocol.pause_writing()
    assert connection.timers.pending() == [SEND, KEEP_ALIVE]
    connection.protocol.resume_writing()

    assert connection.timers.pending() == [KEEP_ALIVE]


async def test_an_answer_left_unread_past_the_send_timeout_aborts_the_connection() -> None:
    connection = Connection(answer_ok)
    connection.protocol.pause_writing()

    connection.timers.fire(SEND)

    assert connection.transport.aborted


async def test_the_closed_connection_stops_every_timer() -> None:
    connection = Connection(answer_ok)
    connection.send(GET[:10])
    connection.protocol.pause_writing()

    connection.protocol.connection_lost(None)

    assert connection.timers.pending() == []
