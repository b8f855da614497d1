"""CORS opens only the routes a browser app calls (issue 19, item 8): with
`TOKEN_SERVICE_CORS_ORIGINS` set, a script on an allowed origin may issue and exchange
participant tokens, and nothing else. `/admin/...`, `/metrics`, `/schema`, the events
webhook and the probes answer its preflight with no `Access-Control-Allow-*` field and
their responses carry no CORS field, so a browser holding an admin token cannot be driven
from the app's origin. A production-like app (not `--dev`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.routes import ASGIRoute, HTTPRoute
from litestar.testing import AsyncTestClient

from token_service.auth import mint_user_token
from token_service.bootstrap.app import create_app
from token_service.config import load_settings
from token_service.http.cors import BROWSER_ROUTES

SHARED_SECRET = "cors-scope-shared-secret-" + "c" * 32
ADMIN_TOKEN = "cors-scope-admin-" + "a" * 24
EVENTS_SECRET = "cors-scope-events-secret-" + "e" * 32
APP_ORIGIN = "https://app.example.com"
Client = AsyncTestClient[Litestar]

#: Every route a browser app has no business calling cross-origin, with a method it has.
NOT_FOR_BROWSERS = {
    "admin keys": ("GET", "/admin/keys"),
    "admin key rotation": ("POST", "/admin/keys/rotate"),
    "admin bans": ("POST", "/admin/bans"),
    "admin participant": ("GET", "/admin/participants/Xq3abc"),
    "admin capabilities": ("POST", "/admin/participants/Xq3abc/capabilities"),
    "admin disconnect": ("POST", "/admin/participants/Xq3abc/disconnect"),
    "metrics": ("GET", "/metrics"),
    "openapi document": ("GET", "/schema/openapi.json"),
    "events webhook": ("POST", "/v1/ivs-events"),
    "liveness": ("GET", "/healthz"),
    "readiness": ("GET", "/readyz"),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(module_env: dict[str, str], module_ivs: Any) -> AsyncIterator[Litestar]:
    settings = load_settings(
        module_env
        | {
            "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
            "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
            "TOKEN_SERVICE_EVENTS_SECRET": EVENTS_SECRET,
            "TOKEN_SERVICE_CORS_ORIGINS": APP_ORIGIN,
        }
    )
    yield create_app(settings, ivs_client=module_ivs)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(app: Litestar) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


def preflight(method: str, origin: str = APP_ORIGIN) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


def cors_fields(response: Any) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("method", "path"), NOT_FOR_BROWSERS.values(), ids=NOT_FOR_BROWSERS.keys())
async def test_a_preflight_from_the_allowed_origin_to_a_route_no_browser_app_calls_allows_nothing(
    client: Client, method: str, path: str
) -> None:
    response = await client.options(path, headers=preflight(method))

    assert cors_fields(response) == []


@pytest.mark.asyncio(loop_scope="module")
async def test_an_admin_answer_to_the_allowed_origin_carries_no_cors_field(
    client: Client,
) -> None:
    response = await client.get(
        "/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Origin": APP_ORIGIN}
    )

    assert response.status_code == 200
    assert cors_fields(response) == []


@pytest.mark.asyncio(loop_scope="module")
async def test_a_refused_admin_request_from_the_allowed_origin_carries_no_cors_field(
    client: Client,
) -> None:
    response = await client.get("/admin/keys", headers={"Origin": APP_ORIGIN})

    assert response.status_code == 401
    assert cors_fields(response) == []


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "path",
    ["/v1/participant-tokens", "/v1/participant-tokens/Xq3abc/exchange"],
    ids=["issue", "exchange"],
)
async def test_a_preflight_from_the_allowed_origin_to_a_browser_route_allows_that_origin(
    client: Client, path: str
) -> None:
    response = await client.options(path, headers=preflight("POST"))

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_preflight_from_another_origin_to_a_browser_route_is_refused(
    client: Client,
) -> None:
    response = await client.options(
        "/v1/participant-tokens", headers=preflight("POST", "https://evil.example")
    )

    assert "access-control-allow-origin" not in response.headers


@pytest.mark.asyncio(loop_scope="module")
async def test_a_refused_token_request_is_readable_by_the_allowed_origin(
    client: Client, stage_arn: str
) -> None:
    # A browser app must be able to read its 401 (and 429) to react to it.
    response = await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers={"Origin": APP_ORIGIN}
    )

    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


@pytest.mark.asyncio(loop_scope="module")
async def test_an_issued_token_is_readable_by_the_allowed_origin(
    client: Client, stage_arn: str
) -> None:
    user_jwt = mint_user_token(SHARED_SECRET.encode(), sub="cors-user", ttl_seconds=600)

    response = await client.post(
        "/v1/participant-tokens",
        json={"stageArn": stage_arn},
        headers={"Authorization": f"Bearer {user_jwt}", "Origin": APP_ORIGIN},
    )

    assert response.status_code == 201, response.text
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


def test_every_browser_route_is_a_route_of_the_app(app: Litestar) -> None:
    # A renamed route would silently lose CORS: the list must name real templates.
    # The token route is an ASGI route (`@asgi`), served in the same app.
    templates = {
        route.path_format for route in app.routes if isinstance(route, HTTPRoute | ASGIRoute)
    }

    assert templates >= BROWSER_ROUTES
