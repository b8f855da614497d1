"""Readiness: one check per dependency the mode needs (the signing key, Redis, IVS, the
JWKS), each answering None when ready or why not."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import redis.asyncio

from token_service.auth import (
    JwksCache,
)
from token_service.config import Settings
from token_service.errors import DomainError
from token_service.http.services import ReadinessCheck
from token_service.infra.redis import RedisClient
from token_service.ivs.client import Ivs
from token_service.keys import KeyRing
from token_service.tokens.mode import Mode

if TYPE_CHECKING:
    pass

#: How long a successful IVS reachability check is trusted (readiness probes are frequent,
#: IVS's control-plane quotas are small).
IVS_CHECK_TTL_SECONDS = 30.0


class _CachedCheck:
    """Runs an expensive readiness check at most once per `ttl` while it succeeds."""

    def __init__(self, check: ReadinessCheck, ttl: float) -> None:
        self._check = check
        self._ttl = ttl
        self._ok_until = 0.0

    async def __call__(self) -> str | None:
        if time.monotonic() < self._ok_until:
            return None
        result = await self._check()
        if result is None:
            self._ok_until = time.monotonic() + self._ttl
        return result


def readiness_checks(
    settings: Settings,
    ring: KeyRing,
    ivs: Ivs,
    redis_client: RedisClient | None,
    jwks: JwksCache | None,
) -> dict[str, ReadinessCheck]:
    checks: dict[str, ReadinessCheck] = {}

    if settings.mode is Mode.LOCAL:

        async def key_check() -> str | None:
            return None if ring.active() is not None else "no active signing key"

        checks["signingKey"] = key_check

    if redis_client is not None:
        client = redis_client

        async def redis_check() -> str | None:
            try:
                await client.ping()
            except (redis.RedisError, OSError) as exc:
                return f"unreachable ({exc.__class__.__name__})"
            return None

        checks["redis"] = redis_check

    async def ivs_check() -> str | None:
        try:
            await ivs.ping()
        except DomainError as exc:
            return exc.detail
        return None

    checks["ivs"] = _CachedCheck(ivs_check, IVS_CHECK_TTL_SECONDS)

    if jwks is not None:
        cache = jwks

        async def jwks_check() -> str | None:
            return None if cache.ready else "no key set fetched from the JWKS URL yet"

        checks["jwks"] = jwks_check
    return checks
