"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from token_service.http.schemas import Health
from token_service.http.services import Services

#: A readiness check that takes longer than this counts as failed.
CHECK_TIMEOUT_SECONDS = 2.0


@get("/healthz", tags=["operations"], summary="Liveness: 200 while the process serves")
async def healthz() -> Health:
    return Health(status="ok")


async def _run(check_name: str, services: Services) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await services.readiness[check_name]()
    except TimeoutError:
        return "timed out"


@get(
    "/readyz",
    tags=["operations"],
    summary="Readiness: 200 only when every dependency the mode needs answers",
    responses={
        503: ResponseSpec(
            data_container=Health,
            description="A dependency does not answer: `checks` names it",
            generate_examples=False,
        )
    },
)
async def readyz(services: NamedDependency[Services]) -> Response[Health]:
    names = list(services.readiness)
    results = await asyncio.gather(*(_run(name, services) for name in names))
    checks = {name: result or "ok" for name, result in zip(names, results, strict=True)}
    healthy = all(result is None for result in results)
    return Response(
        Health(status="ok" if healthy else "unavailable", checks=checks),
        status_code=200 if healthy else 503,
        headers={"Cache-Control": "no-store"},
    )
