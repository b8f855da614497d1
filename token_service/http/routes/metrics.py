"""`GET /metrics`: Prometheus text exposition, or OpenMetrics (with exemplars) on request."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from token_service.observability.metrics import Metrics

#: The classic text format every Prometheus reads (the metric names need no escaping);
#: Litestar appends the charset itself.
MEDIA_TYPE = "text/plain; version=0.0.4"
#: What Prometheus asks for first when exemplar storage is on; exemplars need it.
OPENMETRICS_MEDIA_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@get(
    "/metrics",
    operation_id="getMetrics",
    tags=["operations"],
    summary="Prometheus metrics",
    include_in_schema=True,
    media_type=MEDIA_TYPE,
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    registry: Metrics = request.app.state["metrics"]
    openmetrics = "application/openmetrics-text" in request.headers.get("accept", "")
    return Response(
        registry.render(openmetrics=openmetrics),
        media_type=OPENMETRICS_MEDIA_TYPE if openmetrics else MEDIA_TYPE,
        headers={"Cache-Control": "no-store"},
    )
