"""The outside clients, built from settings: IVS (boto3 and its adapter), Redis, and the
clients a one-off command (the CLI, the dev server) uses and closes itself.

The only place (with the dev server's demo stage) that constructs a boto3 or Redis client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from token_service.config import Settings
from token_service.infra.redis import RedisClient, build_redis, close_redis, connect
from token_service.infra.urls import in_clear_to_remote
from token_service.ivs.client import DEFAULT_WORKERS, Ivs, RetryPolicy, build_client

if TYPE_CHECKING:
    from mypy_boto3_ivs_realtime import IvsrealtimeClient

log = logging.getLogger(__name__)

#: Threads calling IVS; the boto3 connection pool gets as many connections.
IVS_WORKERS = DEFAULT_WORKERS
#: A command's Redis calls may wait longer than a request's: nobody is queueing behind it.
OPERATOR_REDIS_TIMEOUT_SECONDS = 2.0


def build_ivs(settings: Settings) -> IvsrealtimeClient:
    return build_client(
        region=settings.ivs.region,
        endpoint_url=settings.ivs.endpoint_url,
        connect_timeout=settings.ivs.connect_timeout_seconds,
        read_timeout=settings.ivs.read_timeout_seconds,
        pool_size=IVS_WORKERS,
    )


def build_operator_ivs(settings: Settings, workers: int = 2) -> Ivs:
    """The IVS adapter for one-off operator work (CLI, dev server): the settings'
    retry budget and deadline, a small thread pool, no budget pacing."""
    return Ivs(
        build_ivs(settings),
        workers,
        retry=RetryPolicy(
            max_attempts=settings.ivs.max_attempts, deadline_seconds=settings.ivs.deadline_seconds
        ),
    )


#: Plain schemes of the URL settings that reach another machine, and what travels in clear.
_CLEAR_SCHEMES = frozenset({"http", "redis", "redis+cluster"})


def clear_transport_warnings(settings: Settings) -> list[tuple[str, str]]:
    """(setting, why) for each URL setting that sends credentials or keys in clear to another
    machine: warned at start-up, not refused (Redis without TLS inside a VPC, or the
    emulator in a Compose network, are common and deliberate). A plain JWKS URL is refused
    instead (`config.env`): whoever can change the keys can sign any user's token."""
    candidates = {
        "TOKEN_SERVICE_REDIS_URL": (
            settings.redis.url.reveal() if settings.redis.url else None,
            "its password and every record (user ids, bans) travel in clear; use rediss://",
        ),
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": (
            settings.ivs.endpoint_url,
            "signed IVS requests and the tokens IVS returns travel in clear",
        ),
        "TOKEN_SERVICE_SECRETSMANAGER_ENDPOINT_URL": (
            settings.keys.secretsmanager_endpoint_url,
            "the private signing keys travel in clear",
        ),
    }
    return [
        (name, f"{name} is a plain URL to a host that is not loopback: {what}")
        for name, (url, what) in candidates.items()
        if url is not None and in_clear_to_remote(url, _CLEAR_SCHEMES)
    ]


def build_redis_client(settings: Settings) -> RedisClient | None:
    if settings.redis.url is None:
        log.warning(
            "TOKEN_SERVICE_REDIS_URL is not set: rate limits, the mapping log and caches "
            "are in process memory, not shared between replicas"
        )
        return None
    return build_redis(settings.redis.url.reveal(), timeout_seconds=settings.redis.timeout_seconds)


@dataclass
class OperatorClients:
    """What a one-off command needs: the IVS adapter and, with Redis configured, a client."""

    ivs: Ivs
    redis: RedisClient | None


@asynccontextmanager
async def operator_redis(
    settings: Settings, *, connect_redis: bool = True
) -> AsyncIterator[RedisClient | None]:
    """A command's Redis client (None without TOKEN_SERVICE_REDIS_URL), closed when it is
    done. With `connect_redis` false, connecting is left to the caller (which may tolerate
    failure)."""
    if settings.redis.url is None:
        yield None
        return
    client = build_redis(
        settings.redis.url.reveal(), timeout_seconds=OPERATOR_REDIS_TIMEOUT_SECONDS
    )
    try:
        if connect_redis:
            await connect(client)
        yield client
    finally:
        await close_redis(client)


@asynccontextmanager
async def operator_clients(
    settings: Settings, *, connect_redis: bool = True
) -> AsyncIterator[OperatorClients]:
    """The IVS adapter and Redis client of a command (`operator_redis`), closed when it is
    done."""
    ivs = build_operator_ivs(settings)
    try:
        async with operator_redis(settings, connect_redis=connect_redis) as redis_client:
            yield OperatorClients(ivs, redis_client)
    finally:
        ivs.close()
