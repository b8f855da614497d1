"""Failures counted per subject (a client IP), shared by replicas through Redis: after too
many, the subject is locked out until its rate lets one more failure through.

The admin routes count failed authentications with it. Only failures are spent:
`failed` spends one of the subject's allowance (and says whether it was already spent,
so this failure is refused as throttled), `locked` only looks (for a request whose
credentials are right: it must not learn that they are while its address is locked).
The allowance is a `Rate` decided by GCRA, as every other limit (`admission/ratelimit.py`):
`10/minute` lets ten failures through at once, then one every six seconds, and a
subject that stops failing is forgiven at that pace.

While Redis fails (bounded by a timeout, then the circuit breaker of `infra.redis`), the
same rate is decided per process, whatever `TOKEN_SERVICE_RATE_LIMIT_ON_REDIS_ERROR` says
for tokens: not open (an attacker able to slow Redis would get unlimited guesses) and not
closed (an operator must reach the admin API during a Redis incident). N replicas then
allow at most N times the rate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from redis.exceptions import RedisError

from token_service.admission.ratelimit import (
    GCRA_CHECK,
    GCRA_COMMIT,
    Decision,
    Limit,
    MemoryRateLimiter,
    decision_from_tats,
    limit_args,
)
from token_service.domain import Rate
from token_service.infra.lane import script_call
from token_service.infra.redis import Breaker, RedisClient

log = logging.getLogger(__name__)


class FailureThrottle(Protocol):
    async def locked(self, subject: str) -> float | None:
        """Seconds until `subject` may fail again, or None: it is not locked out."""
        ...

    async def failed(self, subject: str) -> float | None:
        """Spend one failure of `subject`; seconds until it may fail again when its
        allowance was already spent (nothing is spent then), else None."""
        ...


def _retry_after(decision: Decision) -> float | None:
    return None if decision.allowed else max(decision.retry_after, 0.001)


class MemoryFailureThrottle:
    """Per-process failures (no Redis configured, or Redis failing)."""

    def __init__(self, name: str, rate: Rate, limiter: MemoryRateLimiter | None = None) -> None:
        self._name = name
        self._rate = rate
        self._limiter = limiter or MemoryRateLimiter()

    def _limit(self, subject: str) -> Limit:
        return Limit.of(self._name, subject, self._rate)

    async def locked(self, subject: str) -> float | None:
        return _retry_after(await self._limiter.peek([self._limit(subject)]))

    async def failed(self, subject: str) -> float | None:
        return _retry_after(await self._limiter.check([self._limit(subject)]))


# KEYS[1]: the subject's limit key. ARGV: its interval and burst, then 1 to spend a
# failure (when the allowance is not spent) or 0 to look only. Returns {now, allowed, tat}.
_SCRIPT = (
    "local n = 1\n"
    + GCRA_CHECK
    + "if allowed == 1 and ARGV[3] == '1' then\n"
    + GCRA_COMMIT
    + "end\nreturn {now, allowed, tats[1]}\n"
)


class RedisFailureThrottle:
    """Failures in Redis, shared by every replica, with the per-process twin as fallback."""

    def __init__(
        self,
        client: RedisClient,
        name: str,
        rate: Rate,
        *,
        timeout_seconds: float = 1.0,
        breaker_seconds: float = 1.0,
        on_degraded: Callable[[], None] | None = None,
    ) -> None:
        self._name = name
        self._rate = rate
        # Through redis-py, not the token path's lane: admin requests are rare.
        self._script = script_call(client, None, _SCRIPT)
        self._timeout = timeout_seconds
        self._breaker = Breaker(breaker_seconds)
        self._fallback = MemoryFailureThrottle(name, rate)
        self._on_degraded = on_degraded

    async def locked(self, subject: str) -> float | None:
        return await self._decide(subject, spend=False)

    async def failed(self, subject: str) -> float | None:
        return await self._decide(subject, spend=True)

    async def _decide(self, subject: str, *, spend: bool) -> float | None:
        limit = Limit.of(self._name, subject, self._rate)
        if self._breaker.closed:
            try:
                async with asyncio.timeout(self._timeout):
                    raw = await self._script([limit.key], [*limit_args([limit]), int(spend)])
            except (RedisError, OSError, TimeoutError) as exc:
                if self._breaker.failure(exc):
                    log.warning(
                        "%s failures: Redis failed (%s); counted per process for a while",
                        self._name,
                        exc.__class__.__name__,
                    )
            else:
                self._breaker.success()
                return _retry_after(decision_from_tats([limit], int(raw[0]), [int(raw[2])]))
        if self._on_degraded is not None:
            self._on_degraded()
        fallback = self._fallback.failed if spend else self._fallback.locked
        return await fallback(subject)
