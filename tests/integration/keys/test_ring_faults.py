"""Redis lost in the middle of a rotation does not wedge the ring (issue 20, item 1).

Before: the key files were written before the fenced Redis commit, and a refresh copied
file keys unknown to Redis into it, status included. With ImportPublicKey slow and Redis
restarted empty during a rotation, the rotate answered 409, the files said the new key was
active, Redis (refilled from the files meanwhile) said the old one was, and the next
refresh made both active: every key operation then failed ("more than one active key")
and `serve` on that state exited 2. A real `redis-server` killed and restarted on its port,
the emulator over HTTP with latency on ImportPublicKey.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio

from tests.integration.keys.support import Clock, ivs_arns, make_ring
from tests.support.redis_server import RedisProcess
from tests.support.tools import needs_tool
from token_service.errors import Conflict
from token_service.keys import KeyStatus
from token_service.keys.state import STATE_KEY

pytestmark = needs_tool("redis-server", "Redis is killed and restarted empty mid-rotation")


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    process = RedisProcess().start()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
async def own_redis(redis_process: RedisProcess) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_process.url)
    try:
        yield client
    finally:
        await client.aclose()


def _slow_imports(emulator: Any, milliseconds: int) -> None:
    httpx.post(
        f"{emulator.url}/_emulator/faults",
        json={"operation": "ImportPublicKey", "latencyMs": milliseconds},
        timeout=5,
    ).raise_for_status()


async def test_redis_restarted_empty_during_a_rotation_leaves_one_active_key_everywhere(
    ivs_client: Any,
    keys_dir: Path,
    clock: Clock,
    emulator: Any,
    redis_process: RedisProcess,
    own_redis: redis.asyncio.Redis,
) -> None:
    writer = make_ring(ivs_client, keys_dir, clock, redis_client=own_redis)
    first = await writer.rotate()
    replica = make_ring(ivs_client, keys_dir, clock, redis_client=own_redis)
    _slow_imports(emulator, 1500)

    rotation = asyncio.create_task(writer.rotate())
    await asyncio.sleep(0.5)
    redis_process.stop()
    redis_process.start()
    # Another replica refreshes meanwhile: the empty Redis is refilled from the files.
    await replica.refresh(force=True)
    with pytest.raises(Conflict):
        await rotation
    _slow_imports(emulator, 0)

    fresh = make_ring(ivs_client, keys_dir, clock, redis_client=own_redis)
    await fresh.refresh(force=True)
    statuses = {k.name: k.status for k in fresh.list_keys()}
    assert statuses.pop(first.name) is KeyStatus.ACTIVE
    assert list(statuses.values()) == [KeyStatus.NEXT]
    # And the ring still works: the rotation the operator retries promotes that key.
    retried = await fresh.rotate()
    assert retried.name in statuses
    assert ivs_arns(ivs_client) == {k.arn for k in fresh.list_keys()}


async def test_two_active_keys_in_the_shared_state_are_repaired_not_a_wedge(
    ivs_client: Any, keys_dir: Path, clock: Clock, own_redis: redis.asyncio.Redis
) -> None:
    """The state an earlier version could leave: the latest activated key signs, and the
    next holder of the key lock retires the other in Redis."""
    ring = make_ring(ivs_client, keys_dir, clock, redis_client=own_redis)
    older = await ring.rotate()
    clock.advance(timedelta(minutes=1))
    newer = await ring.rotate()
    meta = json.loads(await own_redis.hget(STATE_KEY, older.name) or "{}")
    meta.update(status="active", retiredAt=None, safeToDeleteAt=None)
    await own_redis.hset(STATE_KEY, older.name, json.dumps(meta))

    replica = make_ring(ivs_client, keys_dir, clock, redis_client=own_redis)
    await replica.refresh(force=True)
    assert replica.active() is not None
    assert replica.active().name == newer.name  # type: ignore[union-attr]

    assert await replica.reconcile() is not None
    stored = json.loads(await own_redis.hget(STATE_KEY, older.name) or "{}")
    assert stored["status"] == "retiring"
