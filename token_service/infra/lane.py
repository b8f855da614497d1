"""One multiplexed, auto-pipelined Redis connection for the token path's script calls.

Every token request makes one Redis script call (see `admission/gate.py`). Through
redis-py's asyncio client that call costs ~400 µs of the worker's CPU on a small
machine (command dispatch, retry wrapper, connection-pool checkout and release, a
timeout task per read, the RESP3 parser): more than the ES384 signature itself. The
call is always the same shape, so this module does the least that call needs:

- one connection per process, shared by every request (no pool): commands are
  written in order and Redis answers in order, so replies are matched to callers by
  a FIFO of futures, as multiplexing clients (Lettuce, StackExchange.Redis) do;
- commands issued in the same event-loop turn go out in one write (auto-pipelining,
  as ioredis does): one syscall and one Redis read for a burst of requests;
- a minimal RESP2 reply parser over the bytes as they arrive.

Failure behaviour is the caller's, as with redis-py: a lost connection fails every
waiting call with `ConnectionError` (the admission gate then trips its breaker) and
the next call connects again. A call's `timeout` is kept by the lane itself: one timer
per connection, armed at the earliest deadline of the calls waiting, fails each late
call with `TimeoutError` (an `asyncio.timeout` per call cost the token path ~3 µs of
CPU each, warm, two per token in ivs mode). A timed-out call, like one its caller
cancelled, leaves the FIFO aligned: the late reply is read and dropped. A
connection whose oldest call has waited longer than `stale_seconds` is dropped, so a
Redis that stopped answering (frozen, or a silent network partition) does not
collect calls forever. Redis Cluster URLs are not served here (one connection cannot
reach every slot): the caller keeps redis-py for them.

Connection settings (host, port, unix socket, TLS, ACL user and password, database)
are read from the same URL as redis-py's, with redis-py's own URL parser and TLS
context, so both connect the same way.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError, ResponseError

from token_service.infra.redis import RedisClient, is_cluster_url

log = logging.getLogger(__name__)

#: Calls waiting for replies on one connection beyond which it is treated as stuck.
MAX_IN_FLIGHT = 10_000

Reply = int | bytes | list[Any] | None


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def _parse(buffer: bytes | bytearray, pos: int) -> tuple[Reply | ResponseError, int]:
    """One RESP2 reply starting at `pos`: `(value, position after it)`."""
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buffer[pos], buffer[pos + 1 : end]
    pos = end + 2
    if kind == 0x3A:  # ':' integer
        return int(line), pos
    if kind == 0x24:  # '$' bulk string
        return _bulk(buffer, int(line), pos)
    if kind == 0x2A:  # '*' array
        return _array(buffer, int(line), pos)
    return _simple(kind, bytes(line)), pos


def _bulk(buffer: bytes | bytearray, length: int, pos: int) -> tuple[bytes | None, int]:
    if length < 0:
        return None, pos
    if len(buffer) < pos + length + 2:
        raise _Incomplete
    return bytes(buffer[pos : pos + length]), pos + length + 2


def _array(buffer: bytes | bytearray, count: int, pos: int) -> tuple[list[Any] | None, int]:
    if count < 0:
        return None, pos
    items: list[Any] = []
    for _ in range(count):
        item, pos = _parse(buffer, pos)
        items.append(item)
    return items, pos


def _simple(kind: int, line: bytes) -> bytes | ResponseError:
    if kind == 0x2B:  # '+' simple string
        return line
    if kind == 0x2D:  # '-' error
        return ResponseError(line.decode(errors="replace"))
    raise ConnectionError(f"unexpected RESP reply type {chr(kind)!r} from Redis")


def pack(args: Sequence[bytes | str | int]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        value = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(value), value))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        #: (future, monotonic time sent, monotonic deadline or None) of every call still
        #: waiting for its reply.
        self.waiting: collections.deque[tuple[asyncio.Future[Reply], float, float | None]] = (
            collections.deque()
        )
        self.closed = False
        self._buffer = bytearray()
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        #: The timer failing late calls, and the deadline it is armed for.
        self._watch: asyncio.TimerHandle | None = None
        self._watch_at = math.inf

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_all(ConnectionError("connection to Redis lost"))

    def _fail_all(self, exc: Exception) -> None:
        self._disarm()
        while self.waiting:
            future, _, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(exc)

    def _disarm(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._watch_at = math.inf

    def _arm(self, deadline: float) -> None:
        """Have the timer fire by `deadline` (monotonic): earlier, if it is set later."""
        if deadline >= self._watch_at:
            return
        self._disarm()
        delay = max(0.0, deadline - time.monotonic())
        self._watch = asyncio.get_running_loop().call_later(delay, self._expire)
        self._watch_at = deadline

    def _expire(self) -> None:
        """Fail every call past its deadline; arm again for the earliest still ahead."""
        self._watch = None
        self._watch_at = math.inf
        now = time.monotonic()
        upcoming = math.inf
        for future, _, deadline in self.waiting:
            if deadline is None or future.done():
                continue
            if deadline <= now:
                future.set_exception(TimeoutError("Redis did not answer in time"))
            elif deadline < upcoming:
                upcoming = deadline
        if upcoming < math.inf:
            self._arm(upcoming)

    def abort(self, reason: str) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self._fail_all(ConnectionError(reason))

    def send(self, command: bytes, deadline: float | None = None) -> asyncio.Future[Reply]:
        """Queue `command`; its reply, or `TimeoutError` once `deadline` (monotonic) passed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        if self.closed:
            # Lost between the caller's check and now: fail at once, never wait forever.
            future.set_exception(ConnectionError("connection to Redis lost"))
            return future
        self.waiting.append((future, time.monotonic(), deadline))
        if deadline is not None:
            self._arm(deadline)
        self._outgoing.append(command)
        if not self._flush_scheduled:
            # Everything sent in this event-loop turn leaves in one write.
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.closed or self.transport is None:
            return
        data, self._outgoing = b"".join(self._outgoing), []
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        pos = 0
        try:
            while pos < len(buffer):
                reply, pos = _parse(buffer, pos)
                if not self.waiting:
                    self.abort("Redis sent a reply nobody asked for")
                    return
                future, _, _ = self.waiting.popleft()
                if future.done():  # timed out, or the caller gave up: drop the late reply
                    continue
                if isinstance(reply, ResponseError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except _Incomplete:
            pass
        except (ConnectionError, ValueError, IndexError) as exc:
            # A reply this parser cannot read: nothing after it can be trusted.
            log.warning("Redis lane: unreadable reply (%s); reconnecting", exc)
            self.abort("unreadable reply from Redis")
            return
        del buffer[:pos]


@dataclass(frozen=True)
class _Endpoint:
    host: str | None
    port: int
    path: str | None
    ssl: ssl.SSLContext | None
    username: str | None
    password: str | None
    db: int


def _endpoint(url: str) -> _Endpoint:
    kwargs: dict[str, Any] = dict(parse_url(url))
    connection_class = kwargs.pop("connection_class", None)
    context = None
    if connection_class is SSLConnection:
        # redis-py's own TLS settings from the URL (ssl_cert_reqs, ssl_ca_certs, ...), so the
        # lane verifies exactly as redis-py would. `ssl_context` is undocumented (checked
        # against redis-py 8.2.0; no public function builds the context from the options);
        # this is its only use, and tests/packaging/test_library_internals.py holds its shape.
        context = SSLConnection(**kwargs).ssl_context.get()
    return _Endpoint(
        host=None
        if connection_class is UnixDomainSocketConnection
        else kwargs.get("host", "localhost"),
        port=int(kwargs.get("port", 6379)),
        path=kwargs.get("path"),
        ssl=context,
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        db=int(kwargs.get("db", 0)),
    )


@dataclass(frozen=True)
class LaneScript:
    """A Lua script called through the lane: by SHA1, its body sent once if Redis lacks it."""

    body: bytes
    sha: bytes

    @classmethod
    def of(cls, body: str) -> LaneScript:
        data = body.encode()
        return cls(data, hashlib.sha1(data, usedforsecurity=False).hexdigest().encode())


class RedisLane:
    """The multiplexed connection: `await lane.run(script, keys, args)`."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 0.5,
        stale_seconds: float = 5.0,
        name: str = "token-service-lane",
    ) -> None:
        if is_cluster_url(url):
            raise ValueError("a Redis Cluster URL needs the cluster client, not one connection")
        self._endpoint = _endpoint(url)
        self._connect_timeout = connect_timeout
        self._stale_seconds = stale_seconds
        self._name = name
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def run(
        self,
        script: LaneScript,
        keys: Sequence[str],
        args: Sequence[bytes | str | int],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the lane's one timer, not one per call
    ) -> Reply:
        """EVALSHA the script; on NOSCRIPT (a restarted or flushed Redis), EVAL it once.

        `timeout` bounds the whole call, connecting included: `TimeoutError` after it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        protocol = self._protocol
        if protocol is None or protocol.closed:
            # Connecting (rare: the first call, or after a failure) counts against the
            # call's time; an asyncio.timeout here costs nothing on the usual path.
            async with asyncio.timeout(timeout):
                protocol = await self._connected()
        self._drop_if_stale(protocol)
        if len(protocol.waiting) >= MAX_IN_FLIGHT:
            protocol.abort("too many Redis calls waiting; reconnecting")
            raise ConnectionError("too many Redis calls waiting for replies")
        command = [b"EVALSHA", script.sha, len(keys), *keys, *args]
        try:
            return await protocol.send(pack(command), deadline)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        # EVAL also puts the script in Redis's cache for the next EVALSHA.
        return await protocol.send(pack([b"EVAL", script.body, len(keys), *keys, *args]), deadline)

    async def command(self, *args: bytes | str | int) -> Reply:
        """Any other command on the same connection (tests, diagnostics)."""
        protocol = await self._connected()
        return await protocol.send(pack(args))

    def _drop_if_stale(self, protocol: _Protocol) -> None:
        if protocol.waiting and time.monotonic() - protocol.waiting[0][1] > self._stale_seconds:
            log.warning(
                "Redis lane: no reply for %.1fs with %d calls waiting; reconnecting",
                self._stale_seconds,
                len(protocol.waiting),
            )
            protocol.abort("Redis stopped answering")

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        if self._connecting is None:
            # One connection attempt at a time; every caller meanwhile waits for it.
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected_done)
        return await asyncio.shield(self._connecting)

    def _connected_done(self, attempt: asyncio.Future[_Protocol]) -> None:
        self._connecting = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._protocol = attempt.result()

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        endpoint = self._endpoint
        protocol: _Protocol | None = None
        try:
            async with asyncio.timeout(self._connect_timeout):
                if endpoint.host is None:
                    _, protocol = await loop.create_unix_connection(_Protocol, endpoint.path or "")
                else:
                    _, protocol = await loop.create_connection(
                        _Protocol, endpoint.host, endpoint.port, ssl=endpoint.ssl
                    )
                await self._hello(protocol)
        except (OSError, TimeoutError, asyncio.CancelledError) as exc:
            # A connection that was made but never set up (a frozen Redis accepts and
            # then says nothing) is closed here, not left open for each retry.
            if protocol is not None:
                protocol.abort("connection set-up failed")
            if isinstance(exc, asyncio.CancelledError):
                raise
            if isinstance(exc, TimeoutError):
                raise ConnectionError("connecting to Redis timed out") from None
            raise ConnectionError(f"cannot connect to Redis: {exc.__class__.__name__}") from None
        return protocol

    async def _hello(self, protocol: _Protocol) -> None:
        endpoint = self._endpoint
        required: list[asyncio.Future[Reply]] = []
        if endpoint.password is not None:
            user = [endpoint.username] if endpoint.username else []
            required.append(protocol.send(pack([b"AUTH", *user, endpoint.password])))
        if endpoint.db:
            required.append(protocol.send(pack([b"SELECT", endpoint.db])))
        # The name shows the lane in CLIENT LIST; an ACL user without CLIENT may refuse it.
        naming = protocol.send(pack([b"CLIENT", b"SETNAME", self._name]))
        outcomes = await asyncio.gather(*required, naming, return_exceptions=True)
        refused = next((o for o in outcomes[:-1] if isinstance(o, BaseException)), None)
        if refused is not None:
            protocol.abort("Redis refused the connection's set-up")
            # Redis's words (they name no secret), never the password itself.
            raise ConnectionError(f"Redis refused the connection: {refused}")

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.closed = True
            self._protocol.transport.close()
        self._protocol = None


def lane_for(url: str | None, *, connect_timeout: float) -> RedisLane | None:
    """The process's lane for this Redis URL; none without Redis or for Redis Cluster."""
    if url is None or is_cluster_url(url):
        return None
    return RedisLane(url, connect_timeout=connect_timeout)


class ScriptCall(Protocol):
    """A Lua script ready to call: `await call(keys, args, timeout=...)` -> its reply;
    `TimeoutError` when Redis has not answered within `timeout` seconds."""

    def __call__(
        self,
        keys: Sequence[str],
        args: Sequence[bytes | str | int],
        *,
        timeout: float | None = None,
    ) -> Awaitable[Any]: ...


def script_call(client: RedisClient, lane: RedisLane | None, body: str) -> ScriptCall:
    """`body` called over the lane when there is one, through redis-py otherwise.

    The one place that chooses: the token path's scripts (admission, the mapping
    record, the IVS budget) take the lane; without one (Redis Cluster) redis-py's
    client routes each call to its keys' shard.
    """
    if lane is None:
        script = client.register_script(body)

        async def through_client(
            keys: Sequence[str],
            args: Sequence[bytes | str | int],
            *,
            timeout: float | None = None,  # noqa: ASYNC109 - ScriptCall's one signature
        ) -> Any:
            async with asyncio.timeout(timeout):
                return await script(keys=list(keys), args=list(args))

        return through_client
    lane_script = LaneScript.of(body)

    async def through_lane(
        keys: Sequence[str],
        args: Sequence[bytes | str | int],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - kept by the lane's timer
    ) -> Any:
        return await lane.run(lane_script, keys, args, timeout=timeout)

    return through_lane
