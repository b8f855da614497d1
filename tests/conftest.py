"""Fixtures shared by every test layer: a private Redis server and the IVS emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
import redis
import redis.asyncio
from botocore.config import Config as BotoConfig

from tests.support.redis_server import private_redis_server
from tests.support.tools import check_tools
from token_service.emulator.options import EmulatorOptions
from token_service.emulator.server import EmulatorServer

if TYPE_CHECKING:
    from mypy_boto3_ivs_realtime import IvsrealtimeClient


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


# ---------------------------------------------------------------- the IVS emulator


@pytest.fixture(scope="session")
def boto3_session() -> boto3.session.Session:
    # One session for every client: botocore loads the service model once, not per test.
    return boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",  # the emulator accepts any key
        region_name="us-east-1",
    )


@pytest.fixture
def emulator_options() -> EmulatorOptions:
    """How `emulator` starts; override this fixture in a module or conftest to change it."""
    return EmulatorOptions()


@pytest.fixture
def emulator(emulator_options: EmulatorOptions) -> Iterator[EmulatorServer]:
    """A fresh IVS real-time emulator for this test, listening on a free local port."""
    server = EmulatorServer(options=emulator_options).start()
    try:
        yield server
    finally:
        # Without waiting: uvicorn's shutdown takes ~0.2 s that no test needs to sit through.
        server.stop(wait=False)


@pytest.fixture
def ivs_client(emulator: EmulatorServer, boto3_session: boto3.session.Session) -> IvsrealtimeClient:
    """A boto3 `ivs-realtime` client of `emulator` (us-east-1), without retries.

    No retries, so a test sees every ThrottlingException and injected fault itself.
    """
    return boto3_session.client(
        "ivs-realtime",
        endpoint_url=emulator.url,
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )
