"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from token_service.http.schemas import Health
from token_service.http.services import CheckStatus, Services
from token_service.observability.metrics import Metrics

#: A readiness check that takes longer than this counts as failed.
CHECK_TIMEOUT_SECONDS = 2.0


@get(
    "/healthz",
    operation_id="getLiveness",
    tags=["operations"],
    summary="Liveness: 200 while the process serves",
)
async def healthz() -> Health:
    return Health(status="ok")


async def _run(check_name: str, services: Services) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await services.readiness[check_name].probe()
    except TimeoutError:
        return "timed out"


@get(
    "/readyz",
    operation_id="getReadiness",
    tags=["operations"],
    summary="Readiness: 200 unless this replica cannot serve what another one could",
    description=(
        "`status` is `ok`, `degraded` (200: a dependency every replica shares fails, such "
        "as IVS or Redis; what still works is served) or `unavailable` (503: this "
        "replica's own state stops it, such as no active signing key). `checks` gives "
        "each check's reason, `states` its verdict (`ok`, `degraded`, `failed`)."
    ),
    responses={
        503: ResponseSpec(
            data_container=Health,
            description="This replica cannot serve: `states` names the failed check",
            generate_examples=False,
        )
    },
)
async def readyz(
    request: Request[Any, Any, Any], services: NamedDependency[Services]
) -> Response[Health]:
    names = list(services.readiness)
    results = await asyncio.gather(*(_run(name, services) for name in names))
    states = {
        name: CheckStatus.OK if result is None else services.readiness[name].failing
        for name, result in zip(names, results, strict=True)
    }
    status: Literal["ok", "degraded", "unavailable"] = "ok"
    if CheckStatus.FAILED in states.values():
        status = "unavailable"
    elif CheckStatus.DEGRADED in states.values():
        status = "degraded"
    metrics: Metrics | None = request.app.state.get("metrics")
    if metrics is not None:
        # One series per check and status, 1 for the status found: alerts can tell a
        # dependency degraded on every replica from one replica's own trouble.
        for name, state in states.items():
            for each in CheckStatus:
                metrics.readiness.labels(name, each.value).set(1 if each is state else 0)
    return Response(
        Health(
            status=status,
            checks={name: result or "ok" for name, result in zip(names, results, strict=True)},
            states={name: state.value for name, state in states.items()},
        ),
        status_code=503 if status == "unavailable" else 200,
        headers={"Cache-Control": "no-store"},
    )
