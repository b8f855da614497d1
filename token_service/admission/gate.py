"""The admission gate: bans, rate limits and the mapping record of a token request, at once.

In local mode a token request's whole Redis work is one script call: refuse a
banned user, decide every rate limit (GCRA, see `admission/ratelimit.py`), and, when admitted,
write the mapping record and its indexes (see `mapping/records.py`). The token is signed
only after that, so there is never a token without its record, and a refused
request costs no signature. In ivs mode the record is only known after IVS
answered, so it is written by `record` in a second round trip, before the response.

When Redis fails (bounded by a timeout, then a circuit breaker, as in
`infra.redis.Breaker`): limits are decided by the configured fallback; bans
by the copy of the ban list refreshed in the background; and the record either
refuses the request (`deny`, the default: 503 and no token) or goes to an
in-process outbox that is written to Redis once it answers again (`outbox`),
while the JSON log line keeps the audit trail meanwhile.

The error is one-sided, never the dangerous side: a script that Redis runs after the
client gave up on it (Redis stalled past the timeout) leaves a record for a token
that was never signed (the caller got 503). A token is never without its record.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.exceptions import RedisError

from token_service.admission.ratelimit import (
    GCRA_CHECK,
    GCRA_COMMIT,
    Decision,
    Limit,
    MemoryRateLimiter,
    OnRedisError,
    decision_from_tats,
    limit_args,
)
from token_service.errors import ServiceUnavailable
from token_service.infra.lane import RedisLane, script_call
from token_service.infra.redis import Breaker, RedisClient
from token_service.ivs.budget import RESERVE_LUA, IvsCallBudget
from token_service.mapping.records import Ban, MappingRecord, ban_keys
from token_service.mapping.store import (
    RECORD_WRITE_LUA,
    MemoryMappingStore,
    RedisMappingStore,
    record_write_args,
    record_write_keys,
)

log = logging.getLogger(__name__)


class OnMappingError(enum.StrEnum):
    DENY = "deny"
    OUTBOX = "outbox"


@dataclass(frozen=True)
class Admission:
    decision: Decision
    #: The ban that refuses this user here, if any (then no limit was consumed).
    ban_id: str | None = None
    #: The record went to the outbox, not (yet) to Redis.
    record_deferred: bool = False

    @property
    def admitted(self) -> bool:
        return self.ban_id is None and self.decision.allowed


class Gate(Protocol):
    async def admit(
        self,
        limits: Sequence[Limit],
        *,
        issuer: str | None,
        user_id: str,
        stage_arn: str,
        record: MappingRecord | None,
    ) -> Admission:
        """Admit (issuer, user_id) on `stage_arn`: their bans, then `limits`, then `record`."""
        ...

    async def record(self, record: MappingRecord) -> bool:
        """Store a record after the fact (ivs mode); True when deferred to the outbox."""
        ...


# KEYS: the n limit keys, the four ban keys (`mapping.records.ban_keys`), then either (a
# record is written) the record, user index, stage index and user-id keys, or (ivs mode: a
# slot of the IVS budget is taken) the budget's two keys. ARGV: the limits' interval/burst
# pairs, then the record's five write arguments or the budget's three reservation
# arguments, and last, n. Returns {now, status, tat_1..tat_n} with status 1 admitted, 0
# limited, followed when admitted with a budget by the reservation {granted, wait,
# replicas}; or {0, 2, ban id} for a banned user. Nothing is written for a refused request.
_SCRIPT = (
    RECORD_WRITE_LUA
    + RESERVE_LUA
    + """
local n = tonumber(ARGV[#ARGV])
-- The four ban keys in one call: every redis.call costs the script more than a GET does.
local bans = redis.call('MGET', KEYS[n + 1], KEYS[n + 2], KEYS[n + 3], KEYS[n + 4])
for i = 1, 4 do
  if bans[i] then return {0, 2, bans[i]} end
end
"""
    + GCRA_CHECK
    + """
local slot = nil
if allowed == 1 then
"""
    + GCRA_COMMIT
    + """
  local a = 2 * n
  if #KEYS == n + 8 then
    write_record(KEYS[n + 5], KEYS[n + 6], KEYS[n + 7], KEYS[n + 8],
                 ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4], ARGV[a + 5])
  elseif #KEYS == n + 6 then
    slot = reserve_slot(KEYS[n + 5], KEYS[n + 6], now, tonumber(ARGV[a + 1]),
                        tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]))
  end
end
local result = {now, allowed}
for i = 1, n do result[#result + 1] = tats[i] end
if slot then
  for i = 1, 3 do result[#result + 1] = slot[i] end
end
return result
"""
)


class BanCopy:
    """The ban list as last read from Redis, for deciding while Redis is down."""

    def __init__(self) -> None:
        self._bans: list[Ban] = []

    def replace(self, bans: Sequence[Ban]) -> None:
        self._bans = list(bans)

    def banned(self, issuer: str | None, user_id: str, stage_arn: str) -> str | None:
        now = time.time()
        return next((b.id for b in self._bans if b.refuses(issuer, user_id, stage_arn, now)), None)


class RedisGate:
    def __init__(
        self,
        client: RedisClient,
        store: RedisMappingStore,
        *,
        retention_seconds: int,
        on_limit_error: OnRedisError = OnRedisError.LOCAL,
        on_mapping_error: OnMappingError = OnMappingError.DENY,
        timeout_seconds: float = 1.0,
        breaker_seconds: float = 1.0,
        outbox_size: int = 100_000,
        on_degraded: Callable[[str], None] | None = None,
        lane: RedisLane | None = None,
        budget: IvsCallBudget | None = None,
    ) -> None:
        self._client = client
        self._store = store
        # Over the lane when there is one (not for Redis Cluster): a fraction of
        # redis-py's CPU per call. The store writes ivs mode's records the same way.
        self._script = script_call(client, lane, _SCRIPT)
        # ivs mode: the request's first IVS budget slot is taken by the admission script
        # itself (one round trip fewer). Over the lane only: with Redis Cluster the
        # budget's keys live in another slot than the admission's.
        self._budget = budget if lane is not None else None
        self._retention = retention_seconds
        self._on_limit_error = on_limit_error
        self._on_mapping_error = on_mapping_error
        self._timeout = timeout_seconds
        self._breaker = Breaker(breaker_seconds)
        self._fallback = MemoryRateLimiter()
        self._on_degraded = on_degraded
        self.bans = BanCopy()
        self.outbox: collections.deque[MappingRecord] = collections.deque(maxlen=outbox_size)

    @property
    def healthy(self) -> bool:
        return self._breaker.closed

    def _trip(self, exc: BaseException) -> None:
        if self._breaker.failure(exc):
            log.warning(
                "admission: Redis failed (%s); degraded for a while", exc.__class__.__name__
            )

    async def admit(
        self,
        limits: Sequence[Limit],
        *,
        issuer: str | None,
        user_id: str,
        stage_arn: str,
        record: MappingRecord | None,
    ) -> Admission:
        if self.healthy:
            try:
                admission = await self._admit_redis(limits, issuer, user_id, stage_arn, record)
            except (RedisError, OSError, TimeoutError) as exc:
                self._trip(exc)
            else:
                self._breaker.success()
                return admission
        return await self._degraded(limits, issuer, user_id, stage_arn, record)

    async def _admit_redis(
        self,
        limits: Sequence[Limit],
        issuer: str | None,
        user_id: str,
        stage_arn: str,
        record: MappingRecord | None,
    ) -> Admission:
        keys = [limit.key for limit in limits] + list(ban_keys(issuer, user_id, stage_arn))
        args: list[bytes | str | int] = [*limit_args(limits)]
        fold = None
        if record is not None:
            keys += record_write_keys(record)
            args += record_write_args(record, self._retention)
        elif self._budget is not None:
            fold = self._budget.fold()
            if fold is not None:
                keys += fold.keys
                args += fold.args
        args.append(len(limits))
        # The script call keeps the timeout (over the lane, with the lane's own timer).
        raw = await self._script(keys, args, timeout=self._timeout)
        if int(raw[1]) == 2:
            ban = raw[2].decode() if isinstance(raw[2], bytes) else str(raw[2])
            return Admission(decision=Decision(allowed=False, states=()), ban_id=ban)
        n = len(limits)
        decision = decision_from_tats(limits, int(raw[0]), [int(v) for v in raw[2 : 2 + n]])
        if fold is not None and len(raw) == 2 + n + 3:
            fold.hold(raw[2 + n :])
        return Admission(decision=decision)

    def _degrade(self, what: str) -> None:
        if self._on_degraded is not None:
            self._on_degraded(what)

    async def _degraded(
        self,
        limits: Sequence[Limit],
        issuer: str | None,
        user_id: str,
        stage_arn: str,
        record: MappingRecord | None,
    ) -> Admission:
        if self._on_mapping_error is OnMappingError.DENY:
            # Never a token without its stored record: refuse before any work.
            self._degrade("deny")
            raise ServiceUnavailable("the mapping store (Redis) is unavailable", retry_after=1)
        ban = self.bans.banned(issuer, user_id, stage_arn)
        if ban is not None:
            return Admission(decision=Decision(allowed=False, states=()), ban_id=ban)
        if self._on_limit_error is OnRedisError.DENY:
            self._degrade("deny")
            raise ServiceUnavailable("rate limiter unavailable (Redis)", retry_after=1)
        if self._on_limit_error is OnRedisError.ALLOW:
            decision = Decision(allowed=True, states=(), degraded=True)
        else:
            local = await self._fallback.check(limits)
            decision = Decision(allowed=local.allowed, states=local.states, degraded=True)
        self._degrade(self._on_limit_error.value)
        if decision.allowed and record is not None:
            self.outbox.append(record)
        return Admission(decision=decision, record_deferred=record is not None)

    async def record(self, record: MappingRecord) -> bool:
        if self.healthy:
            try:
                await self._store.record(record, timeout=self._timeout)
            except (RedisError, OSError, TimeoutError) as exc:
                self._trip(exc)
            else:
                self._breaker.success()
                return False
        if self._on_mapping_error is OnMappingError.DENY:
            raise ServiceUnavailable("the mapping store (Redis) is unavailable", retry_after=1)
        self.outbox.append(record)
        return True

    async def flush_outbox(self) -> int:
        """Write deferred records to Redis, oldest first; stop at the first failure."""
        written = 0
        while self.outbox and self.healthy:
            record = self.outbox[0]
            try:
                await self._store.record(record, timeout=self._timeout * 10)
            except (RedisError, OSError, TimeoutError) as exc:
                self._trip(exc)
                break
            self.outbox.popleft()
            written += 1
        return written

    async def refresh_bans(self) -> None:
        try:
            async with asyncio.timeout(1.0):
                bans = await self._store.bans()
            self.bans.replace(bans)
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("ban list refresh failed (%s)", exc.__class__.__name__)


class MemoryGate:
    """The in-process twin: limits, bans and records in this process only."""

    def __init__(self, store: MemoryMappingStore, limiter: MemoryRateLimiter | None = None) -> None:
        self._store = store
        self._limiter = limiter or MemoryRateLimiter()

    async def admit(
        self,
        limits: Sequence[Limit],
        *,
        issuer: str | None,
        user_id: str,
        stage_arn: str,
        record: MappingRecord | None,
    ) -> Admission:
        ban = self._store.banned(issuer, user_id, stage_arn)
        if ban is not None:
            return Admission(decision=Decision(allowed=False, states=()), ban_id=ban.id)
        decision = await self._limiter.check(limits)
        if decision.allowed and record is not None:
            await self._store.record(record)
        return Admission(decision=decision)

    async def record(self, record: MappingRecord) -> bool:
        await self._store.record(record)
        return False
