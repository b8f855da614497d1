"""Readiness: one check per dependency the mode needs (the signing key, Redis, IVS, the
JWKS), each probe answering None when fine or why not, and each deciding what its failure
means for this replica.

Readiness answers one question for the load balancer: should traffic go to another
replica instead? So a check fails readiness only for what is this replica's own (its key
ring, its JWKS cache), where another replica may well do better. A dependency every
replica shares (IVS, Redis) failing fails them all alike: taking every replica out of the
balancer would turn a partial outage (cached stages still signed, exchanges, moderation,
admin reads, clear 503s with Retry-After for the rest) into connection errors for
everything. Such a check reports `degraded` (in `/readyz` and the readiness gauge) and
the replica stays ready. docs/operations.md ("Health checks") has the reasoning per check.
"""

from __future__ import annotations

import time

import redis.asyncio

from token_service.auth import JwksCache
from token_service.config import Settings
from token_service.errors import DomainError
from token_service.http.services import CheckStatus, Probe, ReadinessCheck
from token_service.infra.redis import RedisClient
from token_service.ivs.client import Ivs
from token_service.keys import KeyRing
from token_service.tokens.mode import Mode

#: How long a successful IVS reachability check is trusted (readiness probes are frequent,
#: IVS's control-plane quotas are small).
IVS_CHECK_TTL_SECONDS = 30.0


class _CachedProbe:
    """Runs an expensive probe at most once per `ttl` while it succeeds."""

    def __init__(self, probe: Probe, ttl: float) -> None:
        self._probe = probe
        self._ttl = ttl
        self._ok_until = 0.0

    async def __call__(self) -> str | None:
        if time.monotonic() < self._ok_until:
            return None
        result = await self._probe()
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

        async def key_probe() -> str | None:
            return None if ring.active() is not None else "no active signing key"

        # This replica's own ring (a mounted Secret not updated yet, a refresh that
        # failed): another replica may hold the key. And without one, local mode issues
        # and exchanges nothing at all.
        checks["signingKey"] = ReadinessCheck(key_probe, CheckStatus.FAILED)

    if redis_client is not None:
        client = redis_client

        async def redis_probe() -> str | None:
            try:
                await client.ping()
            except (redis.RedisError, OSError) as exc:
                return f"unreachable ({exc.__class__.__name__})"
            return None

        # Shared by every replica: its limits fall back to local ones or refuse
        # (TOKEN_SERVICE_RATE_LIMIT_ON_REDIS_ERROR, _MAPPING_ON_REDIS_ERROR) the same way on
        # each, so no replica does better than this one.
        checks["redis"] = ReadinessCheck(redis_probe, CheckStatus.DEGRADED)

    async def ivs_probe() -> str | None:
        try:
            await ivs.ping()
        except DomainError as exc:
            return exc.detail
        return None

    # Shared by every replica, in every mode: in local mode cached stages are still
    # signed; in ivs mode no replica can call CreateParticipantToken either, and the rest
    # (exchanges, moderation, admin, a 503 with Retry-After) still needs a replica.
    checks["ivs"] = ReadinessCheck(
        _CachedProbe(ivs_probe, IVS_CHECK_TTL_SECONDS), CheckStatus.DEGRADED
    )

    if jwks is not None:
        cache = jwks

        async def jwks_probe() -> str | None:
            return None if cache.ready else "no key set fetched from the JWKS URL yet"

        # This replica's own cache: once fetched it keeps serving through a provider
        # outage, so "never fetched" is a replica that started while the provider (or
        # the way to it) failed, and others may hold keys. Without a shared secret beside
        # it, this replica can authenticate nobody.
        failing = CheckStatus.DEGRADED if settings.auth.shared_secret else CheckStatus.FAILED
        checks["jwks"] = ReadinessCheck(jwks_probe, failing)
    return checks
