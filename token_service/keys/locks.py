"""Mutual exclusion across replicas: a Redis lock with a lease, and its in-memory twin.

A lease expires on its own, so a replica that dies while holding it blocks the others
for at most the lease. Each holder has a random token: release deletes the lock only
if it still holds that token (a holder whose lease ran out cannot release the next
holder's lock), and writers can fence their writes with the same token (see
`keys.state`). Without Redis, the memory lock excludes within one process only.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Protocol

from token_service.infra.redis import RedisClient

#: Poll interval while waiting for a held lock (with jitter, so waiters do not align).
_RETRY_SECONDS = 0.05

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease(Protocol):
    name: str
    token: str

    async def release(self) -> None: ...


class Lock(Protocol):
    async def acquire(
        self, name: str, *, ttl_seconds: float, wait_seconds: float = 0.0
    ) -> Lease | None:
        """The lease, or None when another holder kept it for all of `wait_seconds`."""
        ...


async def _pause() -> None:
    # Not for security: only spreads waiters apart.
    await asyncio.sleep(_RETRY_SECONDS * (1 + secrets.randbelow(100) / 100))


class RedisLease:
    def __init__(self, client: RedisClient, name: str, token: str) -> None:
        self._client = client
        self.name = name
        self.token = token

    async def release(self) -> None:
        await self._client.eval(_RELEASE, 1, self.name, self.token)


class RedisLock:
    """`SET name token NX PX ttl`; released by a compare-and-delete script."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client

    async def acquire(
        self, name: str, *, ttl_seconds: float, wait_seconds: float = 0.0
    ) -> Lease | None:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + wait_seconds
        while True:
            if await self._client.set(name, token, nx=True, px=max(1, int(ttl_seconds * 1000))):
                return RedisLease(self._client, name, token)
            if time.monotonic() >= deadline:
                return None
            await _pause()


class MemoryLease:
    def __init__(self, lock: MemoryLock, name: str, token: str) -> None:
        self._lock = lock
        self.name = name
        self.token = token

    async def release(self) -> None:
        self._lock.release(self.name, self.token)

    def held(self) -> bool:
        return self._lock.holder(self.name) == self.token


class MemoryLock:
    """The same semantics within one process (no Redis configured)."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}

    def holder(self, name: str) -> str | None:
        held = self._held.get(name)
        if held is None or held[1] <= time.monotonic():
            return None
        return held[0]

    def release(self, name: str, token: str) -> None:
        if self.holder(name) == token:
            del self._held[name]

    async def acquire(
        self, name: str, *, ttl_seconds: float, wait_seconds: float = 0.0
    ) -> Lease | None:
        token = secrets.token_hex(16)
        deadline = time.monotonic() + wait_seconds
        while True:
            if self.holder(name) is None:
                self._held[name] = (token, time.monotonic() + ttl_seconds)
                return MemoryLease(self, name, token)
            if time.monotonic() >= deadline:
                return None
            await _pause()
