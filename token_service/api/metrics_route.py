"""`GET /metrics`: Prometheus text exposition."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST

from token_service.metrics import Metrics


@get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=True)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    registry: Metrics = request.app.state["metrics"]
    return Response(
        registry.render(), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
    )
