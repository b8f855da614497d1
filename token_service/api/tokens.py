"""`POST /v1/participant-tokens`: authenticate, decide, issue, respond."""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from token_service.api.guards import USER_STATE_KEY, require_app_user
from token_service.api.openapi_responses import problems
from token_service.api.schemas import TokenRequestBody, TokenResponseBody
from token_service.api.services import Services
from token_service.api.strict_body import strict_json
from token_service.client_ip import client_address, limit_subject
from token_service.domain import AppUser, Grant, IssuedToken, TokenRequest
from token_service.errors import RateLimited
from token_service.metrics import Metrics
from token_service.ratelimit import response_headers, user_key

log = logging.getLogger("token_service.issued")


def _iso(token: IssuedToken) -> str:
    return token.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_response(token: IssuedToken) -> TokenResponseBody:
    return TokenResponseBody(
        token=token.token,
        participant_id=token.participant_id,
        user_id=token.user_id,
        stage_arn=token.stage_arn,
        capabilities=sorted(token.capabilities),
        attributes=dict(token.attributes),
        duration_minutes=token.duration_minutes,
        expiration_time=_iso(token),
        signer=token.signer.value,
        key_arn=token.key_arn,
    )


@post(
    "/v1/participant-tokens",
    status_code=201,
    guards=[require_app_user],
    before_request=strict_json(TokenRequestBody),
    summary="Issue a participant token for a stage",
    description=(
        "Authenticated with the app user's JWT. The server-side policy decides the "
        "capabilities, duration and attributes; asking for more than allowed is 403."
    ),
    tags=["tokens"],
    responses=problems(400, 401, 403, 404, 413, 429, 502, 503, 504),
    security=[{"appUserJwt": []}],
)
async def create_participant_token(
    request: Request[Any, Any, Any],
    data: JSONBody[TokenRequestBody],
    services: NamedDependency[Services],
) -> Response[TokenResponseBody]:
    user: AppUser = request.state[USER_STATE_KEY]
    token_request = TokenRequest(
        stage_arn=data.stage_arn,
        capabilities=frozenset(data.capabilities) if data.capabilities is not None else None,
        duration_minutes=data.duration_minutes,
        attributes=data.attributes,
    )
    grant = services.policy.decide(user, token_request)
    limit_headers = await _enforce_limits(request, services, user, grant)
    started = time.perf_counter()
    issued = await services.issuer.issue(grant)
    metrics: Metrics = request.app.state["metrics"]
    metrics.issue_seconds.labels(issued.signer.value).observe(time.perf_counter() - started)
    metrics.tokens_issued.labels(issued.signer.value).inc()
    # The mapping of who got which participant id; never the token itself.
    log.info(
        "participant token issued",
        extra={
            "event": "token_issued",
            "participantId": issued.participant_id,
            "appUserId": user.user_id,
            "issuer": user.issuer,
            "tokenUserId": issued.user_id,
            "stageArn": issued.stage_arn,
            "capabilities": sorted(issued.capabilities),
            "durationMinutes": issued.duration_minutes,
            "expirationTime": _iso(issued),
            "signer": issued.signer.value,
            "keyArn": issued.key_arn,
        },
    )
    return Response(
        to_response(issued),
        status_code=201,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **limit_headers},
    )


async def _enforce_limits(
    request: Request[Any, Any, Any], services: Services, user: AppUser, grant: Grant
) -> dict[str, str]:
    """Decide every limit of this request at once; raise 429 when one refuses."""
    peer = request.client.host if request.client else None
    address = client_address(peer, dict(request.headers), services.trusted_proxies)
    overrides = services.policy.rate_limits_for(user, grant.stage_arn)
    limits = services.rate_limits.for_request(
        user_key=user_key(user.issuer, user.user_id),
        ip_subject=limit_subject(address),
        stage_arn=grant.stage_arn,
        user=overrides.user,
        ip=overrides.ip,
        stage=overrides.stage,
    )
    decision = await services.limiter.check(limits)
    metrics: Metrics = request.app.state["metrics"]
    for state in decision.states:
        outcome = "allowed" if state.allowed else "denied"
        metrics.rate_limit_decisions.labels(state.limit.name, outcome).inc()
    headers = response_headers(decision)
    if not decision.allowed:
        # Name only the limits the caller may know about; the stage's stays private.
        shown = [s.limit.name for s in decision.states if not s.allowed and s.limit.disclosed]
        which = f" ({', '.join(shown)} limit)" if shown else ""
        raise RateLimited(
            f"too many token requests{which}; retry later", decision.retry_after, headers
        )
    return headers
