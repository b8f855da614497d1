"""The shared cache: the Redis store and its in-memory twin obey one contract."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from tests.support.redis_server import free_port
from token_service.infra.cache import Cache, MemoryCache, RedisCache, TieredCache


@pytest.fixture
async def cache(store_redis_url: str | None) -> AsyncIterator[Cache]:
    if store_redis_url is None:
        yield MemoryCache()
        return
    client = redis.asyncio.Redis.from_url(store_redis_url, socket_timeout=2)
    try:
        yield RedisCache(client)
    finally:
        await client.aclose()


async def test_a_missing_key_reads_as_none(cache: Cache) -> None:
    assert await cache.get("absent") is None


async def test_a_stored_value_reads_back(cache: Cache) -> None:
    await cache.set("k", b"value", 60)
    assert await cache.get("k") == b"value"


async def test_a_value_is_gone_after_its_ttl(cache: Cache) -> None:
    await cache.set("k", b"value", 1)
    await asyncio.sleep(1.2)
    assert await cache.get("k") is None


async def test_memory_cache_evicts_oldest_beyond_its_bound() -> None:
    small = MemoryCache(max_entries=2)
    for key in ("a", "b", "c"):
        await small.set(key, key.encode(), 60)
    assert await small.get("a") is None
    assert await small.get("c") == b"c"


async def test_tiered_cache_serves_repeat_reads_without_the_shared_layer(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2)
    try:
        await client.flushdb()
        tiered = TieredCache(RedisCache(client))
        await tiered.set("k", b"v", 60)
        await client.flushdb()  # the shared copy is gone; the local one answers
        assert await tiered.get("k") == b"v"
    finally:
        await client.aclose()


async def test_tiered_cache_fills_its_local_layer_from_the_shared_one(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2)
    try:
        await client.flushdb()
        await RedisCache(client).set("k", b"shared", 60)
        tiered = TieredCache(RedisCache(client))
        assert await tiered.get("k") == b"shared"
        await client.flushdb()
        assert await tiered.get("k") == b"shared"
    finally:
        await client.aclose()


async def test_tiered_cache_reads_a_miss_while_redis_is_down() -> None:
    """Redis down: the caller goes to the source (GetStage) instead of failing the request."""
    client = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1)
    try:
        tiered = TieredCache(RedisCache(client))
        assert await tiered.get("k") is None
    finally:
        await client.aclose()


async def test_tiered_cache_keeps_what_it_is_given_locally_while_redis_is_down() -> None:
    client = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1)
    try:
        tiered = TieredCache(RedisCache(client))
        await tiered.set("k", b"v", 60)
        assert await tiered.get("k") == b"v"
    finally:
        await client.aclose()
