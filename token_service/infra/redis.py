"""The Redis client: one place that turns `TOKEN_SERVICE_REDIS_URL` into a client.

`redis://`, `rediss://` and `unix://` give a plain client; `redis+cluster://` and
`rediss+cluster://` a Redis Cluster client (ElastiCache in cluster mode). Both are
built to fail within a bounded time: short socket timeouts and at most one retry,
since redis-py 8's defaults retry a dead connection for seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable
from typing import Any

import redis.asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)

RedisClient = redis.asyncio.Redis | RedisCluster
#: Every key of a token request (rate limits, bans, the mapping record) shares this hash
#: tag, so one script may touch them all: one slot in Redis Cluster.
HASH_TAG = "{ts}"
#: Connections per process (per node in a cluster): more than one event loop's
#: requests need at once, since each holds a connection for one round trip.
MAX_CONNECTIONS = 128


def reply_text(value: bytes | str) -> str:
    """A reply's text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else value


async def connect(client: RedisClient) -> None:
    """Learn the cluster's slots before serving; concurrent first calls would race to."""
    if isinstance(client, RedisCluster):
        await client.initialize()


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower().endswith("+cluster")


async def _written(sending: Awaitable[None]) -> None:
    """A write to a connection the peer closed is a connection error, whatever the loop.

    Under uvloop, writing to a transport that already saw the peer go (Redis killed
    while a connection was being set up) raises `RuntimeError`, which redis-py passes
    through untouched; every caller here handles `RedisError`/`OSError`, so a bare
    `RuntimeError` became a 500 and ended the lifespan's background loops. As an
    `OSError`, redis-py drops the connection and raises its `ConnectionError`.
    """
    try:
        await sending
    except RuntimeError as exc:
        raise ConnectionResetError(
            f"write on a closed connection ({exc.__class__.__name__})"
        ) from exc


class _WriteGuard(AbstractConnection):
    """The one override of a redis-py private method: `_send_packed_command`, checked against
    redis-py 8.2.0 (every `send_packed_command` goes through it). No public hook sees a write
    fail; tests/packaging/test_library_internals.py fails if redis-py stops calling it."""

    async def _send_packed_command(self, command: Iterable[bytes]) -> None:
        await _written(super()._send_packed_command(command))


class _TcpConnection(_WriteGuard, Connection):
    pass


class _TlsConnection(_WriteGuard, SSLConnection):
    pass


class _UnixConnection(_WriteGuard, UnixDomainSocketConnection):
    pass


_GUARDED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _TcpConnection,
    SSLConnection: _TlsConnection,
    UnixDomainSocketConnection: _UnixConnection,
}


def _guarded(connection_class: Any) -> Any:
    return _GUARDED.get(connection_class, connection_class)


def _guard_cluster(client: RedisCluster) -> RedisCluster:
    """Cluster nodes take their connection class from the client's connection kwargs.

    RedisCluster takes no `connection_class` argument (it sets Connection or SSLConnection
    itself), so the guard is set in its undocumented `connection_kwargs` and
    `nodes_manager` (checked against redis-py 8.2.0; tests/packaging/test_library_internals.py)."""
    kwargs: dict[str, Any] = client.connection_kwargs
    kwargs["connection_class"] = _guarded(kwargs.get("connection_class", Connection))
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = _guarded(node.connection_class)
    client.nodes_manager.connection_kwargs["connection_class"] = kwargs["connection_class"]
    return client


def build_redis(url: str, *, timeout_seconds: float = 0.5) -> RedisClient:
    if is_cluster_url(url):
        scheme, rest = url.split("://", 1)
        plain = scheme.lower().removesuffix("+cluster") + "://" + rest
        return _guard_cluster(
            RedisCluster.from_url(
                plain,
                socket_timeout=timeout_seconds,
                socket_connect_timeout=timeout_seconds,
                retry=Retry(NoBackoff(), retries=1),
                max_connections=MAX_CONNECTIONS,
            )
        )
    # A blocking pool: under a burst, requests queue briefly for a connection instead
    # of failing with MaxConnectionsError once the pool is used up.
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=max(1.0, timeout_seconds),
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), retries=1),
        health_check_interval=30,
    )
    pool.connection_class = _guarded(pool.connection_class)
    return redis.asyncio.Redis.from_pool(pool)


class Breaker:
    """Stops calling a failing Redis for a while, so a dead one costs requests no time.

    A refused or broken connection opens it at once. A timeout only counts: under a
    burst, a busy event loop can make one call look slow while Redis is fine, and a
    single slow call must not turn a second of traffic into fallback decisions.
    """

    def __init__(self, open_seconds: float = 1.0, timeouts_to_open: int = 3) -> None:
        self._open_seconds = open_seconds
        self._timeouts_to_open = timeouts_to_open
        self._timeouts = 0
        self._open_until = 0.0

    @property
    def closed(self) -> bool:
        return time.monotonic() >= self._open_until

    def success(self) -> None:
        self._timeouts = 0

    def failure(self, exc: BaseException) -> bool:
        """Count a failure; True when the breaker opened because of it."""
        if isinstance(exc, TimeoutError):
            self._timeouts += 1
            if self._timeouts < self._timeouts_to_open:
                return False
        self._timeouts = 0
        self._open_until = time.monotonic() + self._open_seconds
        return True


#: Shutdown must end: a connection left mid-command by a cancelled task can make
#: redis-py's close wait forever, so closing is bounded and then abandoned.
CLOSE_TIMEOUT_SECONDS = 2.0


async def close_redis(client: RedisClient) -> None:
    closing = asyncio.ensure_future(client.aclose())
    done, _ = await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT_SECONDS)
    if not done:
        closing.cancel()
        log.warning("Redis client did not close within %.0fs; abandoned", CLOSE_TIMEOUT_SECONDS)
