"""Notes of the public keys this service set out to import, kept before ImportPublicKey.

An import can succeed at IVS and still leave the key unknown here: GetPublicKey after it
fails (throttled, a 5xx), ImportPublicKey answers after our deadline, or the commit is
refused because the key lock's lease ran out. Such a key holds one of IVS's three slots
per region, and nothing would ever delete it. The note, written before the call, is what
lets reconciliation (`KeyRing.reconcile`) tell "our import that failed half-way", safe to
delete, from a key imported elsewhere (another deployment, an operator's CLI whose key
files have not reached this replica yet), which is only reported.

In Redis with several replicas (a sorted set, name -> time noted), in memory otherwise.
Notes are forgotten after a day: reconciliation runs every few minutes.
"""

from __future__ import annotations

import time
from typing import Protocol

from token_service.infra.redis import RedisClient

#: With the key state's hash tag: one slot in Redis Cluster, beside the lock.
IMPORTS_KEY = "token-service:{keys}:imports"
#: How long a note is kept.
NOTE_TTL_SECONDS = 86400


class ImportNotes(Protocol):
    async def note(self, name: str) -> None:
        """Record that a key named `name` is about to be imported."""
        ...

    async def noted(self) -> set[str]:
        """Names noted within the last day."""
        ...

    async def forget(self, names: set[str]) -> None: ...


class MemoryImportNotes:
    """The notes of one process (no Redis): enough for a single replica."""

    def __init__(self) -> None:
        self._notes: dict[str, float] = {}

    async def note(self, name: str) -> None:
        self._notes[name] = time.time()

    async def noted(self) -> set[str]:
        cutoff = time.time() - NOTE_TTL_SECONDS
        self._notes = {n: at for n, at in self._notes.items() if at >= cutoff}
        return set(self._notes)

    async def forget(self, names: set[str]) -> None:
        for name in names:
            self._notes.pop(name, None)


class RedisImportNotes:
    """The notes of every replica, so any replica's reconciliation finds any orphan."""

    def __init__(self, client: RedisClient) -> None:
        self._client = client

    async def note(self, name: str) -> None:
        # One round trip, not atomic (the two calls never were): `noted` trims by time.
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(IMPORTS_KEY, {name: time.time()})
            pipe.expire(IMPORTS_KEY, NOTE_TTL_SECONDS)
            await pipe.execute()

    async def noted(self) -> set[str]:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(IMPORTS_KEY, "-inf", time.time() - NOTE_TTL_SECONDS)
            pipe.zrange(IMPORTS_KEY, 0, -1)
            _, names = await pipe.execute()
        return {n.decode() if isinstance(n, bytes) else str(n) for n in names}

    async def forget(self, names: set[str]) -> None:
        if names:
            await self._client.zrem(IMPORTS_KEY, *names)
