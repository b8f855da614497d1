"""The admission gate seen as a rate limiter, so the limit contract tests run the
exact script the service runs for every token (bans and record left out)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from token_service.admission.gate import OnMappingError, RedisGate
from token_service.admission.ratelimit import Decision, Limit, OnRedisError
from token_service.infra.redis import RedisClient
from token_service.mapping.store import RedisMappingStore


class GateLimiter:
    def __init__(
        self,
        client: RedisClient,
        *,
        on_error: OnRedisError = OnRedisError.LOCAL,
        timeout_seconds: float = 5.0,
        breaker_seconds: float = 1.0,
        on_degraded: Callable[[str], None] | None = None,
    ) -> None:
        # `outbox`: a Redis failure then leaves the limits to `on_error`, as in the service.
        self._gate = RedisGate(
            client,
            RedisMappingStore(client, retention_seconds=3600),
            retention_seconds=3600,
            on_limit_error=on_error,
            on_mapping_error=OnMappingError.OUTBOX,
            timeout_seconds=timeout_seconds,
            breaker_seconds=breaker_seconds,
            on_degraded=on_degraded,
        )

    async def check(self, limits: Sequence[Limit]) -> Decision:
        admission = await self._gate.admit(
            limits, issuer=None, user_id="contract-user", stage_arn="contract-stage", record=None
        )
        return admission.decision
