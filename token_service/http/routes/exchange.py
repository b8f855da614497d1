"""Token exchange routes: the participant's own refresh/promotion, and an admin's PUBLISH change."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from token_service.errors import ServiceUnavailable
from token_service.http.guards import ADMIN_STATE_KEY, require_admin, require_app_user
from token_service.http.openapi import ParticipantIdPath, problems
from token_service.http.routes.tokens import caller, to_response, token_headers
from token_service.http.schemas import (
    ATTRIBUTES,
    CAPABILITIES,
    DURATION,
    TokenResponseBody,
)
from token_service.http.services import Services
from token_service.http.strict_body import strict_json
from token_service.tokens.exchange import ExchangeOutcome, Exchanger, ExchangeRequest


class ExchangeRequestBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """Ask for a fresh token of the same participant; every field is optional."""

    capabilities: CAPABILITIES | None = None
    duration_minutes: DURATION | None = None
    attributes: ATTRIBUTES | None = None


class CapabilitiesRequestBody(
    msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True
):
    """Grant (`true`) or revoke (`false`) PUBLISH for a participant."""

    publish: bool


def _exchanger(services: Services) -> Exchanger:
    exchanger: Exchanger | None = getattr(services, "exchanger", None)
    if exchanger is None:
        raise ServiceUnavailable("token exchange is not configured")
    return exchanger


def _respond(outcome: ExchangeOutcome) -> Response[TokenResponseBody]:
    return Response(
        to_response(outcome.token), status_code=200, headers=token_headers(outcome.decision)
    )


@post(
    "/v1/participant-tokens/{participantId:str}/exchange",
    operation_id="exchangeParticipantToken",
    status_code=200,
    guards=[require_app_user],
    before_request=strict_json(ExchangeRequestBody),
    summary="Exchange a participant's token for a fresh one (same participant, no rejoin)",
    description=(
        "Only the app user the participant was issued to. Same jti, stage and endpoints; "
        "new iat/exp; capabilities and attributes decided by the policy as of now (plus an "
        "admin's PUBLISH grant or revoke). Hand the token to `stage.exchangeToken(token)`. "
        "404 for an unknown participant or another user's, 409 for one issued in ivs mode "
        "(or `changed-concurrently`: changed by other requests meanwhile, 5 times running; "
        "nothing changed, retry), 403 when disconnected or banned."
    ),
    tags=["tokens"],
    responses=problems(400, 401, 403, 404, 409, 413, 415, 429, 503),
    security=[{"appUserJwt": []}],
)
async def exchange_participant_token(
    request: Request[Any, Any, Any],
    participant_id: ParticipantIdPath,
    data: JSONBody[ExchangeRequestBody],
    services: NamedDependency[Services],
) -> Response[TokenResponseBody]:
    exchange_request = ExchangeRequest(
        capabilities=frozenset(data.capabilities) if data.capabilities is not None else None,
        duration_minutes=data.duration_minutes,
        attributes=data.attributes,
    )
    outcome = await _exchanger(services).exchange(
        caller(request, services), participant_id, exchange_request
    )
    return _respond(outcome)


@post(
    "/admin/participants/{participantId:str}/capabilities",
    operation_id="setParticipantCapabilities",
    status_code=200,
    guards=[require_admin],
    before_request=strict_json(CapabilitiesRequestBody),
    summary="Grant or revoke PUBLISH for a participant; returns a ready exchange token",
    description=(
        "The participant's next exchange gets the change too. Of concurrent changes of one "
        "participant, the one written last is the stored state. 404 unknown participant, "
        "409 issued in ivs mode (or `changed-concurrently`: retry), 403 disconnected or banned."
    ),
    tags=["admin"],
    responses=problems(400, 401, 403, 404, 409, 413, 415, 429, 503),
    security=[{"adminToken": []}],
)
async def set_participant_capabilities(
    request: Request[Any, Any, Any],
    participant_id: ParticipantIdPath,
    data: JSONBody[CapabilitiesRequestBody],
    services: NamedDependency[Services],
) -> Response[TokenResponseBody]:
    outcome = await _exchanger(services).set_publish(
        participant_id, publish=data.publish, by=request.state[ADMIN_STATE_KEY]
    )
    return _respond(outcome)
