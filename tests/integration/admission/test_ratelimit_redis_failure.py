"""Redis dies mid-traffic: the limiter answers promptly (its 50 ms timeout), then recovers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.gate_limiter import GateLimiter
from tests.support.redis_server import RedisProcess
from token_service.admission.ratelimit import Decision, Limit, OnRedisError
from token_service.domain import Rate
from token_service.errors import ServiceUnavailable
from token_service.infra.redis import RedisClient, build_redis

LIMITS = [Limit.of("user", "u-failure", Rate.parse("2/minute"))]
BREAKER_SECONDS = 0.3
#: The client gives up after 50 ms (and one retry); an answer must come in the same order of
#: time, not after redis-py's default retries of seconds. Generous, for a loaded CI machine.
PROMPT_SECONDS = 0.5


@pytest.fixture
async def client(server: RedisProcess) -> AsyncIterator[RedisClient]:
    # The app's own client settings: short timeouts, at most one retry.
    client = build_redis(server.url, timeout_seconds=0.05)
    try:
        yield client
    finally:
        await client.aclose()


def _limiter(client: RedisClient, on_error: OnRedisError, degraded: list[str]) -> GateLimiter:
    return GateLimiter(
        client,
        on_error=on_error,
        timeout_seconds=0.05,
        breaker_seconds=BREAKER_SECONDS,
        on_degraded=degraded.append,
    )


async def _timed(limiter: GateLimiter) -> tuple[float, Decision | Exception]:
    started = time.perf_counter()
    try:
        result: Decision | Exception = await limiter.check(LIMITS)
    except ServiceUnavailable as exc:
        result = exc
    return time.perf_counter() - started, result


async def test_local_fallback_keeps_limiting_promptly_per_request(
    server: RedisProcess, client: RedisClient
) -> None:
    degraded: list[str] = []
    limiter = _limiter(client, OnRedisError.LOCAL, degraded)
    assert (await limiter.check(LIMITS)).allowed
    server.stop()
    outcomes = [await _timed(limiter) for _ in range(4)]
    assert all(elapsed < PROMPT_SECONDS for elapsed, _ in outcomes)
    decisions = [d for _, d in outcomes]
    assert all(isinstance(d, Decision) and d.degraded for d in decisions)
    # The in-process limiter applies the same rule: 2/minute, so 2 of the 4 pass.
    assert [d.allowed for d in decisions if isinstance(d, Decision)] == [True, True, False, False]
    assert degraded == ["local"] * 4


async def test_deny_fallback_answers_503_promptly(
    server: RedisProcess, client: RedisClient
) -> None:
    limiter = _limiter(client, OnRedisError.DENY, [])
    await limiter.check(LIMITS)
    server.stop()
    for elapsed, result in [await _timed(limiter) for _ in range(3)]:
        assert elapsed < PROMPT_SECONDS
        assert isinstance(result, ServiceUnavailable)


async def test_allow_fallback_lets_requests_through_promptly(
    server: RedisProcess, client: RedisClient
) -> None:
    limiter = _limiter(client, OnRedisError.ALLOW, [])
    server.stop()
    for elapsed, result in [await _timed(limiter) for _ in range(5)]:
        assert elapsed < PROMPT_SECONDS
        assert isinstance(result, Decision)
        assert result.allowed
        assert result.degraded


async def test_limiter_recovers_by_itself_when_redis_returns(
    server: RedisProcess, client: RedisClient
) -> None:
    limiter = _limiter(client, OnRedisError.LOCAL, [])
    await limiter.check(LIMITS)
    server.stop()
    assert (await limiter.check(LIMITS)).degraded
    server.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await asyncio.sleep(BREAKER_SECONDS)
        decision = await limiter.check(LIMITS)
        if not decision.degraded:
            break
    else:
        pytest.fail("the limiter did not go back to Redis")
    # Redis restarted empty: its fresh count says 1 of 2 used.
    assert decision.states[0].remaining == 1


async def test_a_hung_redis_costs_each_request_under_100ms(
    server: RedisProcess, client: RedisClient
) -> None:
    limiter = _limiter(client, OnRedisError.LOCAL, [])
    await limiter.check(LIMITS)
    server.pause()
    try:
        outcomes = [await _timed(limiter) for _ in range(4)]
    finally:
        server.resume()
    assert all(elapsed < PROMPT_SECONDS for elapsed, _ in outcomes)
    assert all(isinstance(d, Decision) and d.degraded for _, d in outcomes)
