"""Rate limits: one contract, held by the Redis limiter, Redis Cluster and the memory twin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from redis.crc import key_slot

from tests.support.gate_limiter import GateLimiter
from tests.support.redis_server import redis_cluster
from token_service.admission.ratelimit import (
    Limit,
    MemoryRateLimiter,
    RateLimiter,
    RateLimits,
)
from token_service.domain import Rate
from token_service.infra.redis import RedisClient, build_redis, connect

MakeLimiter = Callable[[], Awaitable[RateLimiter]]


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with redis_cluster() as url:
        yield url


@pytest.fixture(params=["memory", "redis", "cluster"])
async def backend(
    request: pytest.FixtureRequest, redis_url: str
) -> AsyncIterator[tuple[MakeLimiter, RedisClient | None]]:
    """A factory of limiters sharing one store (several replicas), and the raw client."""
    if request.param == "memory":
        shared = MemoryRateLimiter()

        async def same() -> RateLimiter:
            return shared

        yield same, None
        return
    url = redis_url if request.param == "redis" else request.getfixturevalue("cluster_url")
    clients: list[RedisClient] = []

    async def make() -> RateLimiter:
        client = build_redis(url, timeout_seconds=2)
        clients.append(client)
        # As the app's start-up does: learn the cluster's slots before concurrent use.
        await connect(client)
        # A generous timeout: these tests are about the algorithm, not Redis trouble.
        return GateLimiter(client, timeout_seconds=5)

    inspector = build_redis(url, timeout_seconds=2)
    await inspector.flushdb() if request.param == "redis" else await _flush_cluster(inspector)
    try:
        yield make, inspector
    finally:
        for client in [*clients, inspector]:
            await client.aclose()


async def _flush_cluster(client: Any) -> None:
    await client.flushdb(target_nodes=client.ALL_NODES)


def _limit(name: str, subject: str, rate: str) -> Limit:
    return Limit.of(name, subject, Rate.parse(rate))


async def test_exactly_burst_requests_are_allowed_out_of_many_concurrent(
    backend: tuple[MakeLimiter, RedisClient | None],
) -> None:
    make, _ = backend
    replicas = [await make() for _ in range(4)]
    limits = [_limit("user", "u-burst", "10/minute;burst=7")]
    results = await asyncio.gather(*(replicas[i % 4].check(limits) for i in range(200)))
    assert sum(d.allowed for d in results) == 7


async def test_a_request_denied_by_one_limit_consumes_none_of_the_others(
    backend: tuple[MakeLimiter, RedisClient | None],
) -> None:
    make, _ = backend
    limiter = await make()
    ip = _limit("ip", "192.0.2.1", "1/minute")
    user = _limit("user", "u-ip", "5/minute")
    stage = _limit("stage", "s-ip", "5/minute")
    assert (await limiter.check([user, ip, stage])).allowed
    denied = await limiter.check([user, ip, stage])
    assert not denied.allowed
    assert denied.denied_by == ("ip",)
    states = {s.limit.name: s for s in denied.states}
    assert states["user"].remaining == 4
    assert states["stage"].remaining == 4
    # Another IP for the same user still finds the user's budget untouched by the denial.
    other = await limiter.check([user, _limit("ip", "192.0.2.2", "1/minute"), stage])
    assert {s.limit.name: s.remaining for s in other.states}["user"] == 3


async def test_remaining_counts_down_and_a_denial_says_when_to_retry(
    backend: tuple[MakeLimiter, RedisClient | None],
) -> None:
    make, _ = backend
    limiter = await make()
    limits = [_limit("user", "u-count", "3/minute")]
    remaining = [(await limiter.check(limits)).states[0].remaining for _ in range(3)]
    assert remaining == [2, 1, 0]
    denied = await limiter.check(limits)
    assert not denied.allowed
    # One slot comes back every 20 s at 3/minute.
    assert 0 < denied.retry_after <= 20


async def test_steady_traffic_at_the_allowed_rate_is_never_denied(
    backend: tuple[MakeLimiter, RedisClient | None],
) -> None:
    make, _ = backend
    limiter = await make()
    # 20/second: one request every 50 ms is exactly the rate; send at 60 ms for slack.
    limits = [_limit("user", "u-steady", "20/second;burst=1")]
    decisions = []
    for _ in range(25):
        decisions.append(await limiter.check(limits))
        await asyncio.sleep(0.06)
    assert all(d.allowed for d in decisions)


async def test_keys_expire_once_they_carry_no_information(
    backend: tuple[MakeLimiter, RedisClient | None],
) -> None:
    make, inspector = backend
    if inspector is None:
        pytest.skip("the memory twin has no keys to inspect")
    limit = _limit("user", "u-expiry", "10/second")
    await (await make()).check([limit])
    assert await inspector.exists(limit.key) == 1
    ttl_ms = await inspector.pttl(limit.key)
    assert 0 < ttl_ms <= 100
    await asyncio.sleep(0.3)
    assert await inspector.exists(limit.key) == 0


def test_memory_limiter_replenishes_exactly_with_its_clock() -> None:
    now = [1000.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    limits = [_limit("user", "u", "2/second;burst=2")]

    def check() -> bool:
        return asyncio.run(limiter.check(limits)).allowed

    assert [check(), check(), check()] == [True, True, False]
    now[0] += 0.5
    assert [check(), check()] == [True, False]


def test_service_limits_keep_the_stage_limit_undisclosed() -> None:
    limits = RateLimits(
        user=Rate.parse("10/minute"), ip=Rate.parse("60/minute"), stage=Rate.parse("600/minute")
    ).for_request(user_key="k", ip_subject="192.0.2.1", stage_arn="arn:stage")
    assert [(lim.name, lim.disclosed) for lim in limits] == [
        ("user", True),
        ("ip", True),
        ("stage", False),
    ]


def test_every_key_of_one_request_shares_a_cluster_hash_slot() -> None:
    limits = RateLimits(
        user=Rate.parse("10/minute"), ip=Rate.parse("60/minute"), stage=Rate.parse("600/minute")
    ).for_request(user_key="k", ip_subject="2001:db8::/64", stage_arn="arn:aws:ivs:x")
    assert len({key_slot(lim.key.encode()) for lim in limits}) == 1
