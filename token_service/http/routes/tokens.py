"""`POST /v1/participant-tokens`: authenticate, decide, issue, respond."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from token_service.admission.ratelimit import Decision, response_headers
from token_service.domain import IssuedToken, TokenRequest, iso_utc
from token_service.http.client_ip import limit_subject
from token_service.http.guards import USER_STATE_KEY, app_user_first, request_address
from token_service.http.openapi import problems
from token_service.http.schemas import TokenRequestBody, TokenResponseBody
from token_service.http.services import Services
from token_service.http.strict_body import strict_json
from token_service.observability.logs import request_id_var
from token_service.tokens.desk import Caller


def to_response(token: IssuedToken) -> TokenResponseBody:
    return TokenResponseBody(
        token=token.token,
        participant_id=token.participant_id,
        user_id=token.user_id,
        stage_arn=token.stage_arn,
        capabilities=sorted(token.capabilities),
        attributes=dict(token.attributes),
        duration_minutes=token.duration_minutes,
        expiration_time=iso_utc(token.expires_at),
        signer=token.signer.value,
        key_arn=token.key_arn,
    )


def token_headers(decision: Decision | None) -> dict[str, str]:
    """The headers of an answer carrying a token: never cached (it is a credential), and
    the rate limits the caller may see."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if decision is not None:
        headers.update(response_headers(decision))
    return headers


@post(
    "/v1/participant-tokens",
    operation_id="createParticipantToken",
    status_code=201,
    # Authentication, then the strict body check (as a guard would, see app_user_first).
    before_request=app_user_first(strict_json(TokenRequestBody)),
    summary="Issue a participant token for a stage",
    description=(
        "Authenticated with the app user's JWT. The server-side policy decides the "
        "capabilities, duration and attributes; asking for more than allowed is 403."
    ),
    tags=["tokens"],
    responses=problems(400, 401, 403, 404, 413, 415, 429, 502, 503, 504),
    security=[{"appUserJwt": []}],
)
async def create_participant_token(
    request: Request[Any, Any, Any],
    data: JSONBody[TokenRequestBody],
    services: NamedDependency[Services],
) -> Response[TokenResponseBody]:
    token_request = TokenRequest(
        stage_arn=data.stage_arn,
        capabilities=frozenset(data.capabilities) if data.capabilities is not None else None,
        duration_minutes=data.duration_minutes,
        attributes=data.attributes,
    )
    outcome = await services.desk.issue(caller(request, services), token_request)
    return Response(
        to_response(outcome.token), status_code=201, headers=token_headers(outcome.decision)
    )


def caller(request: Request[Any, Any, Any], services: Services) -> Caller:
    """Who asks, from the verified user and the connection (trusted proxies only)."""
    address = request_address(request, services)
    return Caller(
        user=request.state[USER_STATE_KEY],
        ip_subject=limit_subject(address),
        client_ip=str(address) if address is not None else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request_id_var.get(),
    )
