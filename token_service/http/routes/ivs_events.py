"""`POST /v1/ivs-events`: EventBridge "IVS Stage Update" events, from an API destination."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Request, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import JSONBody

from token_service.errors import AuthenticationFailed, NotFound
from token_service.http.guards import (
    client_ip_of,
    failure_reason,
    log_refusal,
    presented_bearer,
)
from token_service.http.openapi import problems
from token_service.http.schemas import EventAccepted
from token_service.http.services import Services
from token_service.mapping.events import StageUpdateEvent, ingest, parse_event


async def require_events_secret(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A guard, so an anonymous caller gets 401 (or 404 when intake is off), never a 400.

    Every refusal is logged (`events_auth_failed`, never the presented value): a wrong
    secret in the EventBridge connection otherwise loses every event without a word.
    Not throttled per IP: EventBridge's deliveries share addresses with other AWS
    customers', and the secret (at least 32 bytes) is not guessable anyway."""
    services: Services = connection.app.state["services"]
    secret = services.events_secret
    if secret is None:
        raise NotFound("IVS event intake is off (TOKEN_SERVICE_EVENTS_SECRET is not set)")
    failure = _secret_failure(connection, secret)
    if failure is not None:
        reason = failure_reason(failure)
        client_ip = client_ip_of(connection)
        log_refusal(connection, "events_auth_failed", reason, client_ip, detail=failure.detail)
        raise failure


def _secret_failure(
    connection: ASGIConnection[Any, Any, Any, Any], secret: str
) -> AuthenticationFailed | None:
    try:
        presented = presented_bearer(connection)
    except AuthenticationFailed as exc:
        return exc
    # Digests, so the comparison's time does not depend on the presented length either.
    if not hmac.compare_digest(_digest(presented), _digest(secret)):
        return AuthenticationFailed("invalid events secret")
    return None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


async def _check_event(request: Request[Any, Any, Any]) -> None:
    # The service's own decoding (400 naming what is wrong), before Litestar's lenient one.
    parse_event(await request.body())


@post(
    "/v1/ivs-events",
    operation_id="receiveIvsEvent",
    status_code=202,
    tags=["events"],
    summary="Attach an IVS stage event to its participant's mapping record",
    description=(
        "For an EventBridge API destination whose connection sends "
        "`Authorization: Bearer <TOKEN_SERVICE_EVENTS_SECRET>`. Late, duplicated and "
        "out-of-order deliveries are fine."
    ),
    guards=[require_events_secret],
    before_request=_check_event,
    responses=problems(400, 401, 404, 413, 503),
    security=[{"eventsSecret": []}],
)
async def ivs_events(
    data: JSONBody[StageUpdateEvent], services: NamedDependency[Services]
) -> EventAccepted:
    return EventAccepted(result=await ingest(services.mapping, data))
