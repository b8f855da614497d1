"""The token desk of `token-service participant-token`: an operator's token, from a shell.

The same issuer as `serve` (the mode, the key ring, the stage directory and its shared
cache) and the same Redis gate (bans, then the mapping record, written before the token
exists), so an operator's token is recorded like any other; the decision is the policy's
operator grant (`tokens.operator`) and no rate limit is counted. The request is first
checked as the HTTP route checks its body, and the answer has the route's shape, so both
read the same.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from redis.exceptions import RedisError

from token_service.admission.gate import OnMappingError, RedisGate
from token_service.bootstrap.clients import OPERATOR_REDIS_TIMEOUT_SECONDS, operator_clients
from token_service.bootstrap.features import build_issuer, build_policy, build_stage_directory
from token_service.bootstrap.keys import build_key_ring
from token_service.config import Settings
from token_service.domain import AppUser, IssuedToken, TokenRequest
from token_service.errors import ConfigurationError, ServiceUnavailable
from token_service.http.routes.tokens import to_response
from token_service.http.schemas import TokenRequestBody
from token_service.http.strict_body import check_body
from token_service.infra.cache import RedisCache, TieredCache
from token_service.infra.redis import RedisClient
from token_service.mapping.store import RedisMappingStore
from token_service.tokens.desk import TokenDesk
from token_service.tokens.mode import Mode
from token_service.tokens.operator import OperatorDecider


def check_token_request(settings: Settings, user: AppUser, request: TokenRequest) -> None:
    """`InvalidRequest` (or the policy's `PermissionDenied`) for what the HTTP route would
    refuse in this request, with the route's words (its field names: `stageArn`,
    `attributes.<key>`); checked before any connection, so a typo costs no Redis or IVS.
    The desk decides again when it issues (a pure function: the same answer)."""
    body: dict[str, Any] = {"stageArn": request.stage_arn, "attributes": dict(request.attributes)}
    if request.capabilities is not None:
        body["capabilities"] = sorted(request.capabilities)
    if request.duration_minutes is not None:
        body["durationMinutes"] = request.duration_minutes
    # json.dumps escapes what the check looks for (control characters, lone surrogates
    # from undecodable arguments) as a client's JSON would, rather than failing on it.
    check_body(json.dumps(body).encode(), TokenRequestBody)
    OperatorDecider(build_policy(settings)).decide(user, request)


def token_answer(token: IssuedToken) -> dict[str, Any]:
    """The token and its facts as `POST /v1/participant-tokens` answers them (camelCase)."""
    answer: dict[str, Any] = msgspec.to_builtins(to_response(token))
    return answer


async def _reachable(client: RedisClient) -> None:
    try:
        async with asyncio.timeout(OPERATOR_REDIS_TIMEOUT_SECONDS):
            await client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        # The URL is not named: it may hold a password.
        raise ServiceUnavailable(
            f"Redis (TOKEN_SERVICE_REDIS_URL) is unreachable ({type(exc).__name__}): "
            "a token is never issued without its mapping record, so none was minted"
        ) from None


@asynccontextmanager
async def operator_token_desk(settings: Settings) -> AsyncIterator[TokenDesk]:
    """The desk of operators' tokens, over the service's Redis, key store and IVS."""
    async with operator_clients(settings) as clients:
        redis_client = clients.redis
        if redis_client is None:
            raise ConfigurationError(
                [
                    "TOKEN_SERVICE_REDIS_URL: participant-token records its token in the "
                    "shared mapping log; without Redis no record would outlive the command"
                ]
            )
        await _reachable(redis_client)
        policy = build_policy(settings)
        ring = build_key_ring(settings, clients.ivs, policy, redis_client=redis_client)
        await ring.refresh(force=True)
        if settings.mode is Mode.LOCAL and ring.active() is None:
            # Said before any IVS call or record: the desk would only find out at signing.
            raise ServiceUnavailable(
                f"no active signing key in {ring.store.description}: create one with "
                "`token-service keys rotate` (or set TOKEN_SERVICE_MODE=ivs)"
            )
        stages = build_stage_directory(settings, clients.ivs, TieredCache(RedisCache(redis_client)))
        retention = settings.mapping.retention_seconds
        gate = RedisGate(
            redis_client,
            RedisMappingStore(redis_client, retention_seconds=retention),
            retention_seconds=retention,
            # A command has no outbox that outlives it: no record, no token.
            on_mapping_error=OnMappingError.DENY,
            timeout_seconds=OPERATOR_REDIS_TIMEOUT_SECONDS,
        )
        yield TokenDesk(
            policy=OperatorDecider(policy),
            issuer=build_issuer(settings, ring, stages, clients.ivs, None),
            gate=gate,
            rate_limits=None,
        )
        # The token counts among its key's, as `keys list` and revocations report.
        await ring.usage.flush()
