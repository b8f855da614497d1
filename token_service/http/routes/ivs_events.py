"""`POST /v1/ivs-events`: EventBridge "IVS Stage Update" events, from an API destination."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import JSONBody

from token_service.errors import AuthenticationFailed, NotFound
from token_service.http.guards import presented_bearer
from token_service.http.openapi import problems
from token_service.http.schemas import EventAccepted
from token_service.http.services import Services
from token_service.mapping.events import StageUpdateEvent, ingest, parse_event


async def require_events_secret(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """A guard, so an anonymous caller gets 401 (or 404 when intake is off), never a 400."""
    services: Services = connection.app.state["services"]
    secret = services.events_secret
    if secret is None:
        raise NotFound("IVS event intake is off (TOKEN_SERVICE_EVENTS_SECRET is not set)")
    presented = presented_bearer(connection)
    if not hmac.compare_digest(presented.encode(), secret.encode()):
        raise AuthenticationFailed("invalid events secret")


async def _check_event(request: Request[Any, Any, Any]) -> None:
    # The service's own decoding (400 naming what is wrong), before Litestar's lenient one.
    parse_event(await request.body())


@post(
    "/v1/ivs-events",
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
