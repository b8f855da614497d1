"""Fixtures shared by every test layer: a private Redis server, and boto3 for the IVS emulator.

The emulator fixtures (`emulator`, `emulator_options`, `ivs_client`) come from the
emulator's own pytest plugin, loaded by `addopts` in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from tests.support.redis_server import private_redis_server
from tests.support.tools import check_tools


def pytest_runtest_setup(item: pytest.Item) -> None:
    check_tools(item)


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


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Runs the test twice: with the in-memory twins and with Redis (the one fixture every
    memory/Redis contract test is parametrized by)."""
    kind: str = request.param
    return kind


@pytest.fixture
def store_redis_url(store_kind: str, request: pytest.FixtureRequest) -> str | None:
    """For `store_kind` "redis": the private server, emptied (its URL); for "memory": None."""
    if store_kind == "memory":
        return None
    url: str = request.getfixturevalue("clean_redis")
    return url
