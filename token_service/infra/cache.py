"""A small shared cache: bytes by key with a time to live, in Redis or in memory.

The stage endpoint cache lives here because GetStage is limited to 5 TPS per
account: every replica must share what one of them learned. The memory twin is
for single-process use (development, tests) and obeys the same contract.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

from redis.exceptions import RedisError

from token_service.infra.redis import RedisClient

log = logging.getLogger(__name__)


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...


class MemoryCache:
    """In-process cache, bounded so a flood of distinct keys cannot exhaust memory."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max_entries = max_entries

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if time.monotonic() >= expires_at:
            del self._entries[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._entries[key] = (time.monotonic() + ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class RedisCache:
    """Cache in Redis under a prefix; entries expire by Redis's own TTL."""

    def __init__(self, client: RedisClient, prefix: str = "ts:cache:") -> None:
        self._client = client
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self._prefix + key)
        # The client is built without decode_responses, so values are bytes.
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._client.set(self._prefix + key, value, ex=max(1, ttl_seconds))


class TieredCache:
    """A short-lived in-process layer over a shared cache.

    Stage endpoints are read on every token request; reading them from Redis each
    time would double the request's Redis round trips. The local layer keeps each
    entry for at most `local_ttl_seconds`, so a change (a deleted stage) still
    propagates within that bound.

    While the shared layer fails (Redis down), the local one serves alone: a shared miss
    costs the caller a lookup at the source (one per key and replica, then cached here),
    where an error would have failed every request for a key this replica had not cached
    yet, although the rest of the token path falls back to local state.
    """

    def __init__(self, shared: Cache, local_ttl_seconds: int = 300) -> None:
        self._shared = shared
        self._local = MemoryCache()
        self._local_ttl = local_ttl_seconds
        self._shared_failing = False

    async def get(self, key: str) -> bytes | None:
        value = await self._local.get(key)
        if value is not None:
            return value
        try:
            value = await self._shared.get(key)
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return None
        self._shared_failing = False
        if value is not None:
            await self._local.set(key, value, self._local_ttl)
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._local.set(key, value, min(ttl_seconds, self._local_ttl))
        try:
            await self._shared.set(key, value, ttl_seconds)
        except (RedisError, OSError) as exc:
            self._failed(exc)
        else:
            self._shared_failing = False

    def _failed(self, exc: Exception) -> None:
        # Once per outage: every request would log it otherwise.
        if not self._shared_failing:
            log.warning(
                "shared cache unavailable (%s): this replica's cache serves alone",
                exc.__class__.__name__,
                extra={"event": "shared_cache_unavailable"},
            )
        self._shared_failing = True
