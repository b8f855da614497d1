"""`POST /v1/ivs-events`: EventBridge "IVS Stage Update" events, from an API destination."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency

from token_service.api.openapi_responses import problems
from token_service.api.schemas import EventAccepted
from token_service.api.services import Services
from token_service.auth import parse_bearer
from token_service.errors import AuthenticationFailed, NotFound
from token_service.ivs_events import ingest, parse_event


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
    responses=problems(400, 401, 404, 413),
)
async def ivs_events(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> EventAccepted:
    secret = services.events_secret
    if secret is None:
        raise NotFound("IVS event intake is off (TOKEN_SERVICE_EVENTS_SECRET is not set)")
    presented = parse_bearer(request.headers.get("authorization"))
    if not hmac.compare_digest(presented.encode(), secret.encode()):
        raise AuthenticationFailed("invalid events secret")
    event = parse_event(await request.body())
    return EventAccepted(result=await ingest(services.mapping, event))
