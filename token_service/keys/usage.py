"""How many tokens each key signed, by expiry: the count a revocation invalidates.

IVS checks a token's key when the participant joins, so deleting a key kills every
token it signed that has not expired yet. Each issued token is counted under its
key's ARN in a one-minute bucket of its expiry; the count of a key's tokens still
unexpired is the sum of its buckets after now (rounded up to the minute, so it may
include tokens that expired less than a minute ago: an upper bound, never short).
The latest expiry issued with a key also bounds when the key is safe to delete.

Counting stays off the request path: the Redis twin adds to memory and writes in
batches (every minute, at shutdown, and whenever an operator's revoke or delete
asks every replica to flush), so an issued token still costs one Redis round trip.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Protocol

import redis

from token_service.infra.redis import RedisClient

log = logging.getLogger(__name__)

BUCKET_SECONDS = 60
#: How often a replica writes its counts to Redis on its own.
FLUSH_INTERVAL_SECONDS = 60.0
USAGE_PREFIX = "token-service:keys:usage:"
MAX_EXPIRY_PREFIX = "token-service:keys:max-expiry:"
#: Keep a key's counts a day past the last expiry counted: long enough for any audit.
_RETAIN_SECONDS = 86400

_SUM_AND_PRUNE = """
local now = tonumber(ARGV[1])
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  if tonumber(fields[i]) > now then
    total = total + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
return total
"""

_RAISE_MAX = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', tonumber(ARGV[1]) + tonumber(ARGV[2]))
end
return 1
"""


def _bucket(expires_at: datetime) -> int:
    seconds = int(expires_at.timestamp())
    return -(-seconds // BUCKET_SECONDS) * BUCKET_SECONDS


class KeyUsage(Protocol):
    #: What `unexpired` counts, in words for the operator.
    meaning: str

    def record(self, arn: str, expires_at: datetime) -> None: ...

    async def flush(self) -> None: ...

    async def unexpired(self, arn: str, now: datetime) -> int: ...

    async def max_expiry(self, arn: str) -> datetime | None: ...


class MemoryKeyUsage:
    """Counts of this process only (no Redis configured)."""

    meaning = (
        "tokens signed with this key that had not expired (to the minute), as issued by "
        "this process since it started; other processes are not counted without Redis"
    )

    def __init__(self) -> None:
        self._counts: dict[str, Counter[int]] = {}
        self._max: dict[str, int] = {}

    def record(self, arn: str, expires_at: datetime) -> None:
        self._counts.setdefault(arn, Counter())[_bucket(expires_at)] += 1
        self._max[arn] = max(self._max.get(arn, 0), int(expires_at.timestamp()))

    async def flush(self) -> None:
        return None

    async def unexpired(self, arn: str, now: datetime) -> int:
        cutoff = now.timestamp()
        counts = self._counts.get(arn, Counter())
        for bucket in [b for b in counts if b <= cutoff]:
            del counts[bucket]
        return sum(counts.values())

    async def max_expiry(self, arn: str) -> datetime | None:
        latest = self._max.get(arn)
        return datetime.fromtimestamp(latest, UTC) if latest else None


class RedisKeyUsage:
    """Counts shared by every replica, written to Redis in batches."""

    meaning = (
        "tokens signed with this key that had not expired (to the minute), as counted by "
        "every replica sharing this Redis; a replica that could not flush within a second "
        "of the request may be missing"
    )

    def __init__(self, client: RedisClient) -> None:
        self._client = client
        self._pending: dict[str, Counter[int]] = {}
        self._pending_max: dict[str, int] = {}

    def record(self, arn: str, expires_at: datetime) -> None:
        self._pending.setdefault(arn, Counter())[_bucket(expires_at)] += 1
        self._pending_max[arn] = max(self._pending_max.get(arn, 0), int(expires_at.timestamp()))

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        pending_max, self._pending_max = self._pending_max, {}
        if not pending:
            return
        pipe = self._client.pipeline(transaction=False)
        for arn, buckets in pending.items():
            key = USAGE_PREFIX + arn
            for bucket, count in buckets.items():
                pipe.hincrby(key, str(bucket), count)
            pipe.expireat(key, max(buckets) + _RETAIN_SECONDS)
        for arn, latest in pending_max.items():
            pipe.eval(_RAISE_MAX, 1, MAX_EXPIRY_PREFIX + arn, latest, _RETAIN_SECONDS)
        try:
            await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            # Keep the counts for the next flush, without the buckets that expired meanwhile.
            now = datetime.now(UTC).timestamp()
            for arn, buckets in pending.items():
                merged = self._pending.setdefault(arn, Counter())
                merged.update({b: c for b, c in buckets.items() if b > now})
            for arn, latest in pending_max.items():
                self._pending_max[arn] = max(self._pending_max.get(arn, 0), latest)
            log.warning("could not write key usage counts to Redis (%s)", type(exc).__name__)

    async def unexpired(self, arn: str, now: datetime) -> int:
        await self.flush()
        total = await self._client.eval(_SUM_AND_PRUNE, 1, USAGE_PREFIX + arn, int(now.timestamp()))
        return int(total)

    async def max_expiry(self, arn: str) -> datetime | None:
        await self.flush()
        value = await self._client.get(MAX_EXPIRY_PREFIX + arn)
        return datetime.fromtimestamp(int(value), UTC) if value else None
