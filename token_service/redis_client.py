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

import redis.asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)

RedisClient = redis.asyncio.Redis | RedisCluster
#: Connections per process (per node in a cluster): more than one event loop's
#: requests need at once, since each holds a connection for one round trip.
MAX_CONNECTIONS = 128


async def connect(client: RedisClient) -> None:
    """Learn the cluster's slots before serving; concurrent first calls would race to."""
    if isinstance(client, RedisCluster):
        await client.initialize()


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower().endswith("+cluster")


def build_redis(url: str, *, timeout_seconds: float = 0.5) -> RedisClient:
    if is_cluster_url(url):
        scheme, rest = url.split("://", 1)
        plain = scheme.lower().removesuffix("+cluster") + "://" + rest
        return RedisCluster.from_url(
            plain,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), retries=1),
            max_connections=MAX_CONNECTIONS,
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
