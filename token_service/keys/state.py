"""The key lifecycle shared by every replica, in Redis: which key is active, next, retiring.

One hash holds each key's metadata (never its private half), keyed by name; a key
deleted from IVS stays as a `deleted` tombstone, so a replica whose read-only store
still holds its files never signs with it again. A generation counter goes up with
every change, and a pub/sub message tells the other replicas at once; they reload.

Writes are fenced: the commit script writes only while the writer still holds the
key-administration lock (`keys.locks.RedisLock`) with its own token, so a writer whose
lease ran out during a slow IVS call cannot overwrite a newer holder's work.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from token_service.errors import Conflict
from token_service.infra.redis import RedisClient
from token_service.keys.locks import Lease

# One hash tag: the commit script touches the lock, the hash and the counter together,
# which Redis Cluster allows only within one slot.
LOCK_KEY = "token-service:{keys}:lock"
STATE_KEY = "token-service:{keys}:state"
GENERATION_KEY = "token-service:{keys}:generation"
CHANNEL = "token-service:keys:events"

_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[2], ARGV[3 + 2 * i], ARGV[4 + 2 * i])
end
return redis.call('INCR', KEYS[3])
"""

_SEED = """
local added = 0
for i = 1, #ARGV, 2 do
  added = added + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
if added > 0 then
  return redis.call('INCR', KEYS[2])
end
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""


class RedisKeyState:
    """The shared lifecycle: read it, commit changes under the lock, hear of changes."""

    def __init__(self, client: RedisClient) -> None:
        self.client = client

    async def generation(self) -> int:
        value = await self.client.get(GENERATION_KEY)
        return int(value or 0)

    async def read(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """The generation and every key's metadata (tombstones included)."""
        generation = await self.generation()
        raw: Mapping[Any, Any] = await self.client.hgetall(STATE_KEY)
        states: dict[str, dict[str, Any]] = {}
        for name, value in raw.items():
            text = name.decode() if isinstance(name, bytes) else str(name)
            try:
                parsed = json.loads(value)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                states[text] = parsed
        return generation, states

    async def commit(self, lease: Lease, changes: Mapping[str, Mapping[str, Any]]) -> int:
        """Write `changes` (name -> metadata) if `lease` still holds the lock; publish."""
        args: list[str] = [lease.token, str(len(changes))]
        for name, meta in changes.items():
            args += [name, json.dumps(dict(meta))]
        result = await self.client.eval(_COMMIT, 3, LOCK_KEY, STATE_KEY, GENERATION_KEY, *args)
        generation = int(result)
        if generation < 0:
            raise Conflict(
                "the key-administration lock expired before this change was saved (a slow "
                "IVS call?); nothing was recorded: list the keys and retry"
            )
        await self.announce(f"changed {generation}")
        return generation

    async def seed(self, entries: Mapping[str, Mapping[str, Any]]) -> int:
        """Add metadata for keys the shared state does not know yet (never overwrites)."""
        args: list[str] = []
        for name, meta in entries.items():
            args += [name, json.dumps(dict(meta))]
        if not args:
            return await self.generation()
        result = await self.client.eval(_SEED, 2, STATE_KEY, GENERATION_KEY, *args)
        return int(result)

    async def announce(self, message: str) -> None:
        await self.client.publish(CHANNEL, message)


def tombstone(meta: Mapping[str, Any], deleted_at: str | None) -> dict[str, Any]:
    return {**meta, "status": "deleted", "deletedAt": deleted_at}
