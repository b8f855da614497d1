"""`GET /metrics`: Prometheus text exposition."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from token_service.observability.metrics import Metrics

#: The classic text format every Prometheus reads (the metric names need no escaping);
#: Litestar appends the charset itself.
MEDIA_TYPE = "text/plain; version=0.0.4"


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
    return Response(registry.render(), media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})
