"""The CreateParticipantToken budget in Redis: shared by replicas, and while Redis fails."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.crc import key_slot

from tests.support.redis_server import free_port, redis_cluster
from token_service.infra.redis import RedisClient, build_redis, connect
from token_service.ivs.budget import (
    RESERVE_LUA,
    BudgetExhausted,
    BudgetRate,
    IvsCallBudget,
    RedisSlots,
    Reservation,
)

RATE = BudgetRate(count=10, period_seconds=1)


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with redis_cluster() as url:
        yield url


@pytest.fixture(params=["redis", "cluster"])
async def client(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[RedisClient]:
    url = redis_url if request.param == "redis" else request.getfixturevalue("cluster_url")
    redis_client = build_redis(url, timeout_seconds=2)
    await connect(redis_client)
    for key in ("ts:ivs:{ts-ivs}:budget:test", "ts:ivs:{ts-ivs}:replicas:test"):
        await redis_client.delete(key)
    try:
        yield redis_client
    finally:
        await redis_client.aclose()


def replica(client: RedisClient, **options: object) -> RedisSlots:
    return RedisSlots(client, RATE, scope="test", timeout_seconds=2, **options)


async def test_replicas_share_one_budget(client: RedisClient) -> None:
    first, second = replica(client), replica(client)

    taken = await first.reserve(1.0)
    queued = await second.reserve(1.0)

    assert taken.wait_seconds == 0
    assert queued.wait_seconds == pytest.approx(0.1, abs=0.02)


async def test_concurrent_reservations_get_distinct_slots(client: RedisClient) -> None:
    replicas = [replica(client) for _ in range(4)]

    answers = await asyncio.gather(*(r.reserve(2.0) for r in replicas for _ in range(3)))

    waits = sorted(round(a.wait_seconds, 1) for a in answers)
    assert waits == [round(0.1 * i, 1) for i in range(12)]


async def test_refusal_beyond_the_max_wait_takes_no_slot(client: RedisClient) -> None:
    slots = replica(client)
    await slots.reserve(0)
    refused = await slots.reserve(0)

    again = await slots.reserve(1.0)

    assert not refused.granted
    assert again.wait_seconds == pytest.approx(0.1, abs=0.02)


async def test_started_replicas_know_how_many_share_the_budget(client: RedisClient) -> None:
    first, second = replica(client), replica(client)

    await first.start()
    await second.start()
    await first.reserve(1.0)

    assert (first.replicas, second.replicas) == (2, 2)
    await first.close()
    await second.close()


async def test_a_closed_replica_leaves_the_count(client: RedisClient) -> None:
    first, second = replica(client), replica(client)
    await first.start()
    await second.start()

    await second.close()
    await first.reserve(1.0)

    assert first.replicas == 1
    await first.close()


async def test_only_the_heartbeat_counts_a_replica_as_sharing(client: RedisClient) -> None:
    # A reservation reads the count; joining it is the heartbeat's (start, then every
    # REPLICA_TTL_SECONDS / 4), so the token path's script writes nothing for it.
    started, silent = replica(client), replica(client)
    await started.start()

    await silent.reserve(1.0)
    await started.reserve(1.0)

    assert (started.replicas, silent.replicas) == (1, 1)
    await started.close()


async def test_budget_keys_share_one_cluster_slot(client: RedisClient) -> None:
    slots = replica(client)

    keys = slots._keys

    assert key_slot(keys[0].encode()) == key_slot(keys[1].encode())


@pytest.fixture
def dead_redis_url() -> str:
    """Nothing listens there: every call fails at once."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def silent_redis_url() -> Iterator[str]:
    """A server that accepts connections and never answers (a black-holed Redis)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


async def test_without_redis_a_replica_runs_its_share_of_the_rate(dead_redis_url: str) -> None:
    slots = RedisSlots(build_redis(dead_redis_url), RATE, scope="test", timeout_seconds=0.2)
    slots.replicas = 2

    first = await slots.reserve(1.0)
    second = await slots.reserve(1.0)

    assert first.degraded
    # Half the rate: one slot every 0.2 s instead of 0.1 s.
    assert second.wait_seconds == pytest.approx(0.2, abs=0.02)


async def test_without_redis_deny_refuses(dead_redis_url: str) -> None:
    slots = RedisSlots(
        build_redis(dead_redis_url), RATE, scope="test", timeout_seconds=0.2, on_error="deny"
    )

    answer = await slots.reserve(1.0)

    assert not answer.granted
    assert answer.retry_after > 0


async def test_black_holed_redis_costs_at_most_the_timeout(silent_redis_url: str) -> None:
    slots = RedisSlots(
        build_redis(silent_redis_url, timeout_seconds=5), RATE, scope="t", timeout_seconds=0.2
    )

    started = time.monotonic()
    answer = await slots.reserve(1.0)

    assert answer.degraded
    assert time.monotonic() - started < 1.5


async def test_after_a_failure_redis_is_left_alone_for_a_while(silent_redis_url: str) -> None:
    slots = RedisSlots(
        build_redis(silent_redis_url, timeout_seconds=5), RATE, scope="t", timeout_seconds=0.2
    )
    await slots.reserve(1.0)

    started = time.monotonic()
    answer = await slots.reserve(1.0)

    assert answer.degraded
    assert time.monotonic() - started < 0.1


async def test_degradations_are_reported(dead_redis_url: str) -> None:
    seen: list[str] = []
    slots = RedisSlots(
        build_redis(dead_redis_url),
        RATE,
        scope="test",
        timeout_seconds=0.2,
        on_degraded=seen.append,
    )

    await slots.reserve(1.0)

    assert seen == ["local"]


# ------------------------------------------- a slot taken by another script (the admission's)


class CountingSlots(RedisSlots):
    """A replica that counts its own reservation calls to Redis."""

    reservations = 0

    async def reserve(self, max_wait_seconds: float) -> Reservation:
        self.reservations += 1
        return await super().reserve(max_wait_seconds)


async def hold_a_slot_reserved_by_another_script(
    client: RedisClient, budget: IvsCallBudget
) -> None:
    """What the admission script does with a fold: `reserve_slot` with the fold's
    arguments, its reply handed to the fold."""
    fold = budget.fold()
    assert fold is not None
    script = client.register_script(
        RESERVE_LUA
        + "local t = redis.call('TIME')\n"
        + "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
        + "return reserve_slot(KEYS[1], KEYS[2], now, tonumber(ARGV[1]), tonumber(ARGV[2]),"
        + " tonumber(ARGV[3]))\n"
    )
    fold.hold(await script(keys=fold.keys, args=fold.args))


async def test_a_held_slot_serves_the_next_acquire_without_asking_redis_again(
    client: RedisClient,
) -> None:
    slots = CountingSlots(client, RATE, scope="test", timeout_seconds=2)
    budget = IvsCallBudget(slots, max_wait_seconds=1.0)

    await hold_a_slot_reserved_by_another_script(client, budget)
    await budget.acquire()
    first = slots.reservations
    await budget.acquire()

    assert first == 0
    assert slots.reservations == 1


async def test_a_held_slot_belongs_to_its_own_request_only(client: RedisClient) -> None:
    slots = CountingSlots(client, RATE, scope="test", timeout_seconds=2)
    budget = IvsCallBudget(slots, max_wait_seconds=1.0)

    async def request_holding_a_slot() -> None:
        await hold_a_slot_reserved_by_another_script(client, budget)

    await asyncio.create_task(request_holding_a_slot())
    await asyncio.create_task(budget.acquire())

    assert slots.reservations == 1


async def test_a_held_refusal_raises_budget_exhausted(client: RedisClient) -> None:
    one_a_minute = BudgetRate(count=1, period_seconds=60)
    slots = RedisSlots(client, one_a_minute, scope="test", timeout_seconds=2)
    budget = IvsCallBudget(slots, max_wait_seconds=0.0)
    await budget.acquire()

    await hold_a_slot_reserved_by_another_script(client, budget)

    with pytest.raises(BudgetExhausted):
        await budget.acquire()
