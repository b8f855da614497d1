"""Start-up tells whether the connected Redis keeps bans and the mapping log across a
restart (issue 20, item 6), against real `redis-server` processes of each kind."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio

from tests.support.redis_server import RedisProcess
from tests.support.tools import needs_tool
from token_service.infra.persistence import (
    Persistence,
    classify,
    persistence_of,
    warn_unless_persistent,
)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[RedisProcess]:
    process = RedisProcess(None, *request.param).start()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
async def client(server: RedisProcess) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(server.url)
    try:
        yield connection
    finally:
        await connection.aclose()


pytestmark = needs_tool("redis-server", "each test runs a Redis configured its own way")

NONE: tuple[str, ...] = ()
AOF = ("--appendonly", "yes")
SNAPSHOTS = ("--save", "3600 1")


@pytest.mark.parametrize("server", [NONE], indirect=True, ids=["none"])
async def test_a_redis_that_persists_nothing_is_warned_about(
    client: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="token_service.infra.persistence"):
        found = await warn_unless_persistent(client)

    assert found is Persistence.NONE
    (record,) = caplog.records
    assert record.__dict__["event"] == "redis_not_persistent"
    assert "lifts every ban" in record.getMessage()


@pytest.mark.parametrize("server", [AOF], indirect=True, ids=["aof"])
async def test_a_redis_with_the_append_only_file_is_not_warned_about(
    client: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="token_service.infra.persistence"):
        found = await warn_unless_persistent(client)

    assert found is Persistence.AOF
    assert caplog.records == []


@pytest.mark.parametrize("server", [SNAPSHOTS], indirect=True, ids=["snapshots"])
async def test_a_redis_with_snapshots_only_is_warned_about_what_it_loses(
    client: redis.asyncio.Redis,
) -> None:
    assert await persistence_of(client) is Persistence.SNAPSHOTS


@pytest.mark.parametrize("server", [("--rename-command", "CONFIG", "")], indirect=True)
async def test_a_redis_that_refuses_config_is_unknown_not_an_error(
    client: redis.asyncio.Redis,
) -> None:
    assert await persistence_of(client) is Persistence.UNKNOWN


def test_the_append_only_file_wins_over_snapshot_rules() -> None:
    assert classify({"appendonly": "yes", "save": ""}) is Persistence.AOF
