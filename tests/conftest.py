"""Fixtures shared by every test layer: a private Redis server and the IVS emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from tests.support.redis_server import private_redis_server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with private_redis_server() as url:
        yield url


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The private server, emptied before the test: returns its URL."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    client.flushdb()
    client.close()
    return redis_url


@pytest.fixture
async def redis_client(clean_redis: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(clean_redis, socket_timeout=2, socket_connect_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()
