"""The Redis client: one place that turns `TOKEN_SERVICE_REDIS_URL` into a client.

`redis://`, `rediss://` and `unix://` give a plain client; `redis+cluster://` and
`rediss+cluster://` a Redis Cluster client (ElastiCache in cluster mode). Both are
built to fail within a bounded time: short socket timeouts and at most one retry,
since redis-py 8's defaults retry a dead connection for seconds.
"""

from __future__ import annotations

import redis.asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

RedisClient = redis.asyncio.Redis | RedisCluster


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
        )
    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), retries=1),
        health_check_interval=30,
    )
