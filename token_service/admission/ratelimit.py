"""Rate limits: every limit of a request decided at once, in Redis or in memory.

The algorithm is GCRA (the generic cell rate algorithm): per key, one number, the
theoretical arrival time (TAT). A limit of `count` per `period` with `burst` has an
emission interval T = period / count; a request conforms when
`max(TAT, now) + T - burst * T <= now`, and then moves TAT by T. It is exact (no
window edges), needs one key per limited thing, and the key can expire as soon as
TAT has passed, because then it carries no information.

This module holds the algorithm, twice: in Python (`MemoryRateLimiter`, and to
read back what the script decided) and as Lua fragments (`GCRA_CHECK`,
`GCRA_COMMIT`) that the admission gate (`admission/gate.py`) runs in its one script per
token request, beside the ban check and the mapping record. All the limits of one
request (user, IP, stage) are decided at once; a request denied by one limit
consumes none of the others; the clock is Redis's own `TIME`, so replicas' clock
skew does not matter. Every key carries the same hash tag, so in Redis Cluster the
script's keys share a slot. The gate falls back to the memory twin (or denies, or
allows) when Redis fails.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from token_service.domain import Rate
from token_service.infra.redis import HASH_TAG


class OnRedisError(enum.StrEnum):
    """What the rate limiter does while Redis fails."""

    LOCAL = "local"
    DENY = "deny"
    ALLOW = "allow"


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """One limit applied to one request: `name` (user, ip, stage) on `subject`."""

    name: str
    subject: str
    count: int
    period_seconds: int
    burst: int
    #: Whether the caller may see this limit in response headers (not the stage's).
    disclosed: bool = True

    @classmethod
    def of(cls, name: str, subject: str, rate: Rate, *, disclosed: bool = True) -> Limit:
        return cls(
            name=name,
            subject=subject,
            count=rate.count,
            period_seconds=rate.period_seconds,
            burst=rate.burst or rate.count,
            disclosed=disclosed,
        )

    #: The GCRA emission interval: computed once here, as the script's arguments and the
    #: decision's figures each read it (limits live for one request).
    interval_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        interval = max(1, round(self.period_seconds * 1_000_000 / self.count))
        object.__setattr__(self, "interval_us", interval)

    @property
    def key(self) -> str:
        return f"ts:{HASH_TAG}:rl:{self.name}:{self.subject}"


@dataclass(frozen=True)
class LimitState:
    limit: Limit
    allowed: bool
    remaining: int
    #: Seconds until the limit is fully replenished.
    reset_seconds: float
    #: Seconds until a request would conform again (0 when allowed).
    retry_after: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    states: tuple[LimitState, ...]
    #: Decided without Redis (the local fallback, or allowed blindly).
    degraded: bool = False

    @property
    def retry_after(self) -> float:
        return max((s.retry_after for s in self.states if not s.allowed), default=0.0)

    @property
    def denied_by(self) -> tuple[str, ...]:
        return tuple(s.limit.name for s in self.states if not s.allowed)


class RateLimiter(Protocol):
    async def check(self, limits: Sequence[Limit]) -> Decision: ...


def _gcra(limits: Sequence[Limit], tats: Sequence[int], now: int) -> tuple[Decision, list[int]]:
    """The algorithm, shared by the memory limiter; the Lua script mirrors it."""
    states: list[LimitState] = []
    new_tats: list[int] = []
    allowed = True
    for limit, stored in zip(limits, tats, strict=True):
        interval = limit.interval_us
        tat = max(stored, now)
        new_tat = tat + interval
        allow_at = new_tat - limit.burst * interval
        if allow_at > now:
            allowed = False
            states.append(
                LimitState(
                    limit=limit,
                    allowed=False,
                    remaining=0,
                    reset_seconds=(tat - now) / 1e6,
                    retry_after=(allow_at - now) / 1e6,
                )
            )
        else:
            states.append(
                LimitState(
                    limit=limit,
                    allowed=True,
                    remaining=(now - allow_at) // interval,
                    reset_seconds=(new_tat - now) / 1e6,
                    retry_after=0.0,
                )
            )
        new_tats.append(new_tat)
    if not allowed:
        # Denied by one limit: the others are not consumed, and the denied ones report
        # the state they are in, not the one they would be in.
        states = [
            s if not s.allowed else _unconsumed(s, tat, now)
            for s, tat in zip(states, (max(t, now) for t in tats), strict=True)
        ]
    return Decision(allowed=allowed, states=tuple(states)), new_tats


def _unconsumed(state: LimitState, tat: int, now: int) -> LimitState:
    interval = state.limit.interval_us
    remaining = (now - (tat - state.limit.burst * interval)) // interval
    return LimitState(
        limit=state.limit,
        allowed=True,
        remaining=max(0, remaining),
        reset_seconds=(tat - now) / 1e6,
        retry_after=0.0,
    )


class MemoryRateLimiter:
    """Per-process limits with the same algorithm (no Redis configured, or the fallback)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._max_keys = max_keys

    async def check(self, limits: Sequence[Limit]) -> Decision:
        now = int(self._clock() * 1_000_000)
        if len(self._tats) > self._max_keys:
            self._forget_expired(now)
        tats = [self._tats.get(limit.key, now) for limit in limits]
        decision, new_tats = _gcra(limits, tats, now)
        if decision.allowed:
            for limit, tat in zip(limits, new_tats, strict=True):
                self._tats[limit.key] = tat
        return decision

    async def peek(self, limits: Sequence[Limit]) -> Decision:
        """What `check` would decide now, without consuming anything."""
        now = int(self._clock() * 1_000_000)
        decision, _ = _gcra(limits, [self._tats.get(limit.key, now) for limit in limits], now)
        return decision

    def _forget_expired(self, now: int) -> None:
        # A key whose TAT has passed says nothing a missing key would not.
        self._tats = {k: v for k, v in self._tats.items() if v > now}

    def keys(self) -> int:
        return len(self._tats)


# Lua fragments shared by every script that decides limits (this module's and the
# admission gate's). Limit i uses KEYS[i] and ARGV[2i-1] (interval, µs), ARGV[2i]
# (burst); `n` is the number of limits. GCRA_CHECK sets `now`, `tats` (each limit's
# TAT before this request, raised to now) and `allowed`; GCRA_COMMIT moves each TAT.
GCRA_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local allowed = 1
-- Every TAT in one call (one MGET costs the script less than n GETs); none without limits.
local stored = {}
if n > 0 then stored = redis.call('MGET', unpack(KEYS, 1, n)) end
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(stored[i] or now)
  if tat < now then tat = now end
  tats[i] = tat
  if tat + interval - burst * interval > now then allowed = 0 end
end
"""

GCRA_COMMIT = """
for i = 1, n do
  local new_tat = tats[i] + tonumber(ARGV[2 * i - 1])
  -- The key expires exactly when it stops carrying information.
  redis.call('SET', KEYS[i], new_tat, 'PX', math.ceil((new_tat - now) / 1000))
end
"""


def limit_args(limits: Sequence[Limit]) -> list[int]:
    args: list[int] = []
    for limit in limits:
        args += [limit.interval_us, limit.burst]
    return args


def decision_from_tats(limits: Sequence[Limit], now: int, tats: Sequence[int]) -> Decision:
    """The decision the script made, with remaining counts, from its raw TATs."""
    decision, _ = _gcra(limits, tats, now)
    return decision


@dataclass(frozen=True)
class RateLimits:
    """The service-wide limits; a policy rule may override any of them."""

    user: Rate
    ip: Rate
    stage: Rate

    def for_request(
        self,
        *,
        user_key: str,
        ip_subject: str,
        stage_arn: str,
        user: Rate | None = None,
        ip: Rate | None = None,
        stage: Rate | None = None,
    ) -> list[Limit]:
        return [
            Limit.of("user", user_key, user or self.user),
            Limit.of("ip", ip_subject, ip or self.ip),
            # Users learn nothing of the stage's limit: it would tell them its traffic.
            Limit.of("stage", stage_arn, stage or self.stage, disclosed=False),
        ]


def response_headers(decision: Decision) -> dict[str, str]:
    """IETF `RateLimit-Policy` and `RateLimit` fields for the limits the caller may see."""
    shown = [s for s in decision.states if s.limit.disclosed]
    if not shown:
        return {}
    policy = ", ".join(
        f'"{s.limit.name}";q={s.limit.count};w={s.limit.period_seconds}' for s in shown
    )
    state = ", ".join(
        f'"{s.limit.name}";r={s.remaining};t={math.ceil(s.reset_seconds)}' for s in shown
    )
    return {"RateLimit-Policy": policy, "RateLimit": state}
