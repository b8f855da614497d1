"""The failure throttle (admin authentications per client IP): one contract, held by the
Redis throttle (shared by replicas) and its per-process twin; and Redis failing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support.redis_server import RedisProcess
from token_service.admission.failures import (
    FailureThrottle,
    MemoryFailureThrottle,
    RedisFailureThrottle,
)
from token_service.domain import Rate
from token_service.infra.redis import RedisClient, build_redis

#: Slow enough that no test runs long enough for a failure to be forgiven.
RATE = Rate.parse("3/hour")
MakeThrottle = Callable[[], Awaitable[FailureThrottle]]


@pytest.fixture(params=["memory", "redis"])
async def replicas(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[MakeThrottle]:
    """A factory of throttles sharing one store, as replicas of the service do."""
    if request.param == "memory":
        shared = MemoryFailureThrottle("admin-auth", RATE)

        async def same() -> FailureThrottle:
            return shared

        yield same
        return
    clients: list[RedisClient] = []
    inspector = build_redis(redis_url, timeout_seconds=2)
    await inspector.flushdb()

    async def make() -> FailureThrottle:
        client = build_redis(redis_url, timeout_seconds=2)
        clients.append(client)
        return RedisFailureThrottle(client, "admin-auth", RATE, timeout_seconds=5)

    try:
        yield make
    finally:
        for client in [*clients, inspector]:
            await client.aclose()


async def test_failures_within_the_rate_are_not_throttled(replicas: MakeThrottle) -> None:
    throttle = await replicas()

    assert [await throttle.failed("192.0.2.1") for _ in range(3)] == [None, None, None]


async def test_the_failure_after_the_allowance_is_throttled_with_a_retry_after(
    replicas: MakeThrottle,
) -> None:
    throttle = await replicas()
    for _ in range(3):
        await throttle.failed("192.0.2.2")

    retry_after = await throttle.failed("192.0.2.2")

    # 3/hour: the next failure conforms one interval (20 minutes) after the burst.
    assert retry_after is not None
    assert 1190 < retry_after <= 1200


async def test_a_subject_is_locked_once_its_allowance_is_spent(replicas: MakeThrottle) -> None:
    throttle = await replicas()
    for _ in range(3):
        await throttle.failed("192.0.2.3")

    assert await throttle.locked("192.0.2.3") is not None


async def test_looking_spends_nothing(replicas: MakeThrottle) -> None:
    throttle = await replicas()
    for _ in range(10):
        assert await throttle.locked("192.0.2.4") is None

    assert [await throttle.failed("192.0.2.4") for _ in range(3)] == [None, None, None]


async def test_another_subject_has_an_allowance_of_its_own(replicas: MakeThrottle) -> None:
    throttle = await replicas()
    for _ in range(4):
        await throttle.failed("192.0.2.5")

    assert await throttle.locked("192.0.2.6") is None


async def test_replicas_share_the_allowance(replicas: MakeThrottle) -> None:
    first, second = await replicas(), await replicas()
    for _ in range(3):
        await first.failed("192.0.2.7")

    assert await second.locked("192.0.2.7") is not None


async def test_while_redis_is_down_failures_are_throttled_per_process(
    server: RedisProcess,
) -> None:
    client = build_redis(server.url, timeout_seconds=0.05)
    degraded: list[str] = []
    throttle = RedisFailureThrottle(
        client,
        "admin-auth",
        RATE,
        timeout_seconds=0.05,
        on_degraded=lambda: degraded.append("local"),
    )
    try:
        server.stop()

        outcomes = [await throttle.failed("192.0.2.8") for _ in range(4)]
    finally:
        await client.aclose()

    # Neither open (unlimited guesses) nor closed (operators locked out): the same rule.
    assert [outcome is None for outcome in outcomes] == [True, True, True, False]
    assert degraded == ["local"] * 4
