"""Budgets for IVS calls: every replica's calls of one operation, under IVS's quota.

IVS limits each operation per account and region: CreateParticipantToken to 50 calls per
second (not adjustable), GetStage and DisconnectParticipant to 5. Every replica of the
service takes a slot from the operation's one shared budget before each call (each retry
too), so the account never sees more than the budget's rate. One `IvsCallBudget` per
operation; `BudgetRate.quota` is that operation's IVS quota.

The budget is GCRA (see `admission/ratelimit.py`) used as a *reservation*: instead of only
answering "does a call conform now", it answers "when does the next slot conform".
If that moment is within the caller's maximum wait, the slot is taken and the
caller sleeps until it; otherwise nothing is taken and the caller gets a 503 with
`Retry-After`. Calls are thereby spread evenly (one every `period / count`), which is
what a per-second quota counted over any sliding second needs: with a burst of B,
any one second holds at most `count + B - 1` calls.

In Redis, one Lua script per call decides with Redis's own clock (replicas' clocks
do not matter) and answers how many replicas share the budget: each replica says it is
alive in a heartbeat (every `REPLICA_TTL_SECONDS / 4`), not in every call (which put
four more Redis commands on the token path). When Redis fails, a replica waits a bounded
time, then either refuses (`deny`) or runs a local budget of `rate / replicas last seen`
(`local`), so that all replicas together still stay near the shared rate.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.exceptions import RedisError

from token_service.domain import Rate
from token_service.errors import ServiceUnavailable
from token_service.infra.background import Spawn, cancel_all, native_spawner
from token_service.infra.lane import RedisLane, script_call
from token_service.infra.redis import RedisClient


class BudgetOnRedisError(enum.StrEnum):
    """What the IVS token budget does while Redis fails (never "allow": that throttles)."""

    LOCAL = "local"
    DENY = "deny"


log = logging.getLogger(__name__)

#: CreateParticipantToken's quota per account and region (not adjustable).
IVS_TOKEN_QUOTA_PER_SECOND = 50
#: GetStage's quota per account and region (IVS real-time service quotas).
IVS_GET_STAGE_QUOTA_PER_SECOND = 5
#: DisconnectParticipant's quota per account and region (IVS real-time service quotas).
IVS_DISCONNECT_QUOTA_PER_SECOND = 5
#: Both keys of the script share this hash tag: one slot in Redis Cluster.
HASH_TAG = "{ts-ivs}"
#: A replica whose heartbeat was not heard for this long no longer counts as sharing the
#: budget.
REPLICA_TTL_SECONDS = 60.0


class BudgetExhausted(ServiceUnavailable):
    """No slot of the IVS budget within the maximum wait: the caller should come back."""

    code = "ivs-budget-exhausted"
    title = "IVS token capacity exhausted"


@dataclass(frozen=True)
class BudgetRate:
    """`count` calls per `period_seconds`, `burst` at once, under IVS's `quota` per
    second for the operation; intervals in microseconds."""

    count: int
    period_seconds: float
    burst: int = 1
    quota: int = IVS_TOKEN_QUOTA_PER_SECOND

    @classmethod
    def of(cls, rate: Rate, quota: int = IVS_TOKEN_QUOTA_PER_SECOND) -> BudgetRate:
        # Burst defaults to 1, not to `count`: a burst adds to any one second's calls.
        return cls(
            count=rate.count,
            period_seconds=rate.period_seconds,
            burst=rate.burst or 1,
            quota=quota,
        )

    # Cached: a budget's rate lives as long as the process, and ivs mode's token path reads
    # these on every call (cached_property's lock is taken on the first read only).
    @functools.cached_property
    def interval_us(self) -> int:
        return max(1, round(self.period_seconds * 1_000_000 / self.count))

    @functools.cached_property
    def worst_second(self) -> float:
        """The most calls this budget can let through within any one second."""
        return self.burst - 1 + 1_000_000 / self.interval_us

    def shared_by(self, replicas: int) -> BudgetRate:
        """This rate divided between `replicas` processes (each gets a burst of 1)."""
        return BudgetRate(self.count, self.period_seconds * max(1, replicas), 1, self.quota)

    def late_tolerance(self) -> float:
        """How late (seconds) a call may leave after its slot and still fit the quota.

        Calls each at most L late fit in windows holding `worst_second + L / interval`
        calls; half of the quota's headroom goes to that, half is left for the network
        and IVS's own clock. At least 5 ms: a budget with no headroom is warned about.
        """
        return self._late_tolerance

    @functools.cached_property
    def _late_tolerance(self) -> float:
        headroom = self.quota - 1 - self.worst_second
        tolerance = headroom / 2 * self.interval_us / 1e6
        return min(1.0, max(0.005, tolerance))

    def describe(self) -> str:
        return f"{self.count}/{self.period_seconds:g}s;burst={self.burst}"


def quota_warning(
    rate: BudgetRate,
    variable: str = "TOKEN_SERVICE_IVS_TOKEN_RATE",
    operation: str = "CreateParticipantToken",
) -> str | None:
    """A start-up warning when the budget could exceed IVS's quota in some second."""
    if rate.worst_second <= rate.quota:
        return None
    return (
        f"{variable} {rate.describe()} allows up to "
        f"{rate.worst_second:.0f} {operation} calls in one second, over IVS's "
        f"fixed {rate.quota}/s: expect upstream throttling (answered as 503)"
    )


@dataclass(frozen=True)
class Reservation:
    """A budget answer: a slot `wait_seconds` from now, or none within the wait allowed."""

    granted: bool
    #: Granted: how long until the slot. Refused: how long until the next slot.
    wait_seconds: float
    #: Refused: when a new request would find a slot within the same wait.
    retry_after: float = 0.0
    #: Decided without Redis.
    degraded: bool = False


def reserve(tat: int, now: int, rate: BudgetRate, max_wait_us: int) -> tuple[Reservation, int]:
    """The reservation step of GCRA (times in µs): `(answer, new TAT)`.

    The Lua script below mirrors this function line by line.
    """
    interval = rate.interval_us
    tat = max(tat, now)
    slot = max(now, tat - (rate.burst - 1) * interval)
    wait = slot - now
    if wait > max_wait_us:
        return Reservation(False, wait / 1e6, (wait - max_wait_us) / 1e6), tat
    return Reservation(True, wait / 1e6), tat + interval


class SlotStore(Protocol):
    @property
    def rate(self) -> BudgetRate: ...

    async def reserve(self, max_wait_seconds: float) -> Reservation: ...

    async def start(self, spawn: Spawn | None = None) -> None: ...

    async def close(self) -> None: ...


class MemorySlots:
    """The budget of one process (no Redis configured, or while Redis fails)."""

    def __init__(self, rate: BudgetRate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._tat = 0

    async def start(self, spawn: Spawn | None = None) -> None:
        """Nothing to join: this budget is the process's own."""

    async def close(self) -> None:
        """Nothing to leave."""

    async def reserve(self, max_wait_seconds: float) -> Reservation:
        now = int(self._clock() * 1_000_000)
        answer, self._tat = reserve(self._tat, now, self.rate, int(max_wait_seconds * 1e6))
        return answer


#: The reservation as a Lua function, shared by the budget's own script and the
#: admission script that takes a slot in the same round trip (see `IvsCallBudget.fold`).
#: Times in µs; returns {granted (0/1), wait µs, replicas}.
RESERVE_LUA = """
local function reserve_slot(tat_key, replicas_key, now, interval, burst, max_wait)
  local tat = tonumber(redis.call('GET', tat_key) or now)
  if tat < now then tat = now end
  local slot = tat - (burst - 1) * interval
  if slot < now then slot = now end
  local wait = slot - now
  local granted = 0
  if wait <= max_wait then
    granted = 1
    local new_tat = tat + interval
    -- The key expires when it stops carrying information (its TAT has passed).
    redis.call('SET', tat_key, string.format('%d', new_tat), 'PX',
               math.ceil((new_tat - now) / 1000) + 1)
  end
  -- The replicas' heartbeats (_HEARTBEAT) keep the set and drop the silent.
  return {granted, string.format('%d', wait), redis.call('ZCARD', replicas_key)}
end
"""

# KEYS[1]: the budget's TAT; KEYS[2]: the replicas (sorted set, score = last seen, µs).
# ARGV: interval µs, burst, max wait µs.
# Returns {granted (0/1), wait µs, replicas}.
_SCRIPT = (
    RESERVE_LUA
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return reserve_slot(KEYS[1], KEYS[2], now, tonumber(ARGV[1]), tonumber(ARGV[2]),
                    tonumber(ARGV[3]))
"""
)

# KEYS[2] only: ARGV: this replica's id, replica TTL µs, 1 to join / 0 to leave.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local replica_ttl = tonumber(ARGV[2])
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], math.ceil(replica_ttl / 1000))
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - replica_ttl))
return redis.call('ZCARD', KEYS[1])
"""


class RedisSlots:
    """The budget shared by every replica through Redis; bounded time when Redis fails.

    After a Redis failure, Redis is left alone for `breaker_seconds`: a dead Redis
    then costs no call any time at all. Meanwhile `on_error` decides: `local` runs
    this replica's share of the rate in memory, `deny` refuses every call.

    `start()` joins the replicas (and keeps a heartbeat) before the first request,
    so the share is known even if Redis fails at once; `close()` leaves.
    """

    def __init__(
        self,
        client: RedisClient,
        rate: BudgetRate,
        *,
        scope: str,
        on_error: str = "local",
        timeout_seconds: float = 0.1,
        breaker_seconds: float = 1.0,
        on_degraded: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        lane: RedisLane | None = None,
        name: str = "IVS token budget",
    ) -> None:
        if on_error not in {"local", "deny"}:
            raise ValueError("on_error must be 'local' or 'deny'")
        self.rate = rate
        #: For log lines: which budget (the token budget, the stage lookup budget).
        self.name = name
        self._client = client
        # Every CreateParticipantToken takes a slot: over the lane when there is one.
        self._script = script_call(client, lane, _SCRIPT)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._heartbeat_tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._keys = (
            f"ts:ivs:{HASH_TAG}:budget:{scope}",
            f"ts:ivs:{HASH_TAG}:replicas:{scope}",
        )
        # Random, so that restarts and several workers of one host count separately.
        self._replica_id = secrets.token_hex(8)
        self._on_error = on_error
        self._timeout = timeout_seconds
        self._breaker_seconds = breaker_seconds
        self._on_degraded = on_degraded
        self._clock = clock
        self._open_until = 0.0
        #: How many replicas shared the budget when Redis last answered.
        self.replicas = 1
        self._fallback: MemorySlots | None = None

    async def start(self, spawn: Spawn | None = None) -> None:
        await self._beat(join=True)
        self._started = True
        (spawn or native_spawner(self._heartbeat_tasks))(self._keep_beating())

    async def close(self) -> None:
        if not self._started:
            return
        await cancel_all(self._heartbeat_tasks)
        self._started = False
        await self._beat(join=False)

    async def _keep_beating(self) -> None:
        while True:
            await asyncio.sleep(REPLICA_TTL_SECONDS / 4)
            await self._beat(join=True)

    async def _beat(self, *, join: bool) -> None:
        args: list[str | int] = [
            self._replica_id,
            int(REPLICA_TTL_SECONDS * 1_000_000),
            1 if join else 0,
        ]
        try:
            async with asyncio.timeout(self._timeout):
                replicas = await self._heartbeat(keys=self._keys[1:], args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning(
                "%s: Redis heartbeat failed (%s); %d replica(s) assumed",
                self.name,
                exc.__class__.__name__,
                self.replicas,
            )
            return
        if join:
            self.replicas = max(1, int(replicas))

    async def reserve(self, max_wait_seconds: float) -> Reservation:
        if self.available:
            try:
                return await self._reserve_redis(max_wait_seconds)
            except (RedisError, OSError, TimeoutError) as exc:
                self._open_until = self._clock() + self._breaker_seconds
                log.warning(
                    "%s: Redis failed (%s); %s for %.1fs",
                    self.name,
                    exc.__class__.__name__,
                    self._degraded_behaviour(),
                    self._breaker_seconds,
                )
        return await self._degraded(max_wait_seconds)

    def _degraded_behaviour(self) -> str:
        if self._on_error == "deny":
            return "refusing every call"
        return f"using this replica's share (1/{self.replicas}) of the budget"

    @property
    def keys(self) -> tuple[str, ...]:
        return self._keys

    @property
    def available(self) -> bool:
        """Redis is tried (not inside the pause after a failure)."""
        return self._clock() >= self._open_until

    def reservation_args(self, max_wait_seconds: float) -> list[str | int]:
        """`reserve_slot`'s arguments after the keys and the time (see RESERVE_LUA)."""
        return [self.rate.interval_us, self.rate.burst, int(max_wait_seconds * 1_000_000)]

    def answer(self, raw: Sequence[Any], max_wait_seconds: float) -> Reservation:
        """`reserve_slot`'s reply as a reservation; remembers how many replicas share."""
        granted, wait_us, replicas = int(raw[0]), int(raw[1]), int(raw[2])
        self.replicas = max(1, replicas)
        wait = wait_us / 1e6
        if granted:
            return Reservation(True, wait)
        return Reservation(False, wait, max(0.0, wait - max_wait_seconds))

    async def _reserve_redis(self, max_wait_seconds: float) -> Reservation:
        raw = await self._script(
            self._keys, self.reservation_args(max_wait_seconds), timeout=self._timeout
        )
        return self.answer(raw, max_wait_seconds)

    async def _degraded(self, max_wait_seconds: float) -> Reservation:
        if self._on_degraded is not None:
            self._on_degraded(self._on_error)
        if self._on_error == "deny":
            return Reservation(False, self._breaker_seconds, self._breaker_seconds, degraded=True)
        share = self.rate.shared_by(self.replicas)
        if self._fallback is None or self._fallback.rate != share:
            self._fallback = MemorySlots(share, self._clock)
        answer = await self._fallback.reserve(max_wait_seconds)
        return Reservation(answer.granted, answer.wait_seconds, answer.retry_after, degraded=True)


@dataclass(frozen=True)
class SlotFold:
    """What another Lua script needs to call `reserve_slot` (RESERVE_LUA) itself, and
    where its reply goes: `hold(reply)` keeps it for this request's next `acquire`."""

    keys: tuple[str, ...]
    #: After the keys and Redis's time: interval, burst, max wait.
    args: list[str | int]
    hold: Callable[[Sequence[Any]], None]


#: A reservation the admission script made for the current request: (answer, arrived).
#: Per task, so per request: the next `acquire` in the same request uses it.
_held: contextvars.ContextVar[tuple[Reservation, float] | None] = contextvars.ContextVar(
    "ivs_budget_held", default=None
)


class IvsCallBudget:
    """Takes a slot before each call of its IVS operation: waits for it, or refuses.

    `acquire(limit)` returns once the caller may call IVS, after sleeping at most
    `min(max_wait, limit)`, with the `clock()` moment by which the call must have
    left (its slot plus the rate's late tolerance); or raises `BudgetExhausted`
    (503 with Retry-After).
    """

    def __init__(
        self,
        slots: SlotStore,
        *,
        max_wait_seconds: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_decision: Callable[[str, float], None] | None = None,
        operation: str = "CreateParticipantToken",
    ) -> None:
        self._slots = slots
        #: The IVS operation this budget paces (for the refusal's message).
        self.operation = operation
        self.max_wait_seconds = max_wait_seconds
        self._sleep = sleep
        self._clock = clock
        self._on_decision = on_decision

    async def start(self, spawn: Spawn | None = None) -> None:
        await self._slots.start(spawn)

    async def close(self) -> None:
        await self._slots.close()

    def fold(self) -> SlotFold | None:
        """A reservation another script can make in its own round trip, or None.

        The admission script takes the request's first slot this way (ivs mode: one
        Redis round trip fewer per token); `hold` then keeps the answer for this
        request's first `acquire`. Only the shared budget folds, and only while Redis
        is tried: otherwise `acquire` decides as usual, degraded behaviour included.
        """
        slots = self._slots
        if not isinstance(slots, RedisSlots) or not slots.available:
            return None
        max_wait = self.max_wait_seconds

        def hold(raw: Sequence[Any]) -> None:
            _held.set((slots.answer(raw, max_wait), self._clock()))

        return SlotFold(slots.keys, slots.reservation_args(max_wait), hold)

    async def acquire(self, limit: float | None = None) -> float:
        max_wait = self.max_wait_seconds if limit is None else min(self.max_wait_seconds, limit)
        held = _held.get()
        if held is not None:
            # Taken by the admission script, moments ago, for this very call.
            _held.set(None)
            answer, arrived = held
        else:
            answer = await self._slots.reserve(max(0.0, max_wait))
            arrived = self._clock()
        # From when the answer arrived: the slot can only be later than this says.
        send_by = arrived + answer.wait_seconds + self._slots.rate.late_tolerance()
        if not answer.granted:
            self._record("refused", 0.0)
            raise BudgetExhausted(
                f"IVS's {self.operation} capacity is in use; retry shortly",
                retry_after=max(answer.retry_after, 0.001),
            )
        self._record("waited" if answer.wait_seconds > 0 else "immediate", answer.wait_seconds)
        # A held slot's wait counts from when the admission's reply arrived.
        wait = (
            answer.wait_seconds if held is None else arrived + answer.wait_seconds - self._clock()
        )
        if wait > 0:
            await self._sleep(wait)
        return send_by

    def _record(self, outcome: str, wait: float) -> None:
        if self._on_decision is not None:
            self._on_decision(outcome, wait)
