"""The demo page's routes, the development-only demo user JWTs, and CORS, over HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import SHARED_SECRET, bearer
from token_service.config import Settings, load_settings
from token_service.http.routes.demo import SDK_BUNDLE, SDK_URL
from token_service.keys import SigningKey

Client = AsyncTestClient[Litestar]
FRONTEND = "https://app.example.com"


@pytest.fixture
def demo_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The demo switched on outside dev mode, with an empty SDK folder."""
    http = dataclasses.replace(settings.http, demo_page=True, web_sdk_dir=tmp_path / "no-sdk")
    return dataclasses.replace(settings, http=http)


@pytest.fixture
def dev_settings(settings: Settings, tmp_path: Path, stage_arn: str) -> Settings:
    """As `serve --dev` configures it: dev mode, demo on by default, the demo stage."""
    http = dataclasses.replace(
        settings.http, demo_stage_arn=stage_arn, web_sdk_dir=tmp_path / "no-sdk"
    )
    return dataclasses.replace(settings, dev=True, http=http)


@pytest.fixture
def cors_settings(env: dict[str, str]) -> Settings:
    return load_settings({**env, "TOKEN_SERVICE_CORS_ORIGINS": FRONTEND})


@pytest.fixture
async def dev_client(
    signing_key: SigningKey, make_app: Callable[..., Litestar], dev_settings: Settings
) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=make_app(settings=dev_settings)) as test_client:
        yield test_client


@pytest.fixture
async def loopback_dev_client(dev_client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The dev app as a caller on 127.0.0.1 sees it (the test client's peer is not loopback)."""
    transport = httpx.ASGITransport(app=dev_client.app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


# ------------------------------------------------------------------ on and off


async def test_demo_page_is_off_outside_dev_mode_by_default(client: Client) -> None:
    assert (await client.get("/demo")).status_code == 404


async def test_demo_page_is_served_when_switched_on(
    make_app: Callable[..., Litestar], demo_settings: Settings
) -> None:
    async with AsyncTestClient(app=make_app(settings=demo_settings)) as client:
        response = await client.get("/demo")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/demo/assets/demo.js"' in response.text


async def test_demo_page_forbids_inline_scripts_and_framing(
    make_app: Callable[..., Litestar], demo_settings: Settings
) -> None:
    async with AsyncTestClient(app=make_app(settings=demo_settings)) as client:
        policy = (await client.get("/demo")).headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy


async def test_demo_page_is_on_by_default_in_dev_mode(dev_client: Client) -> None:
    assert (await dev_client.get("/demo")).status_code == 200


async def test_demo_page_can_be_switched_off_in_dev_mode(
    make_app: Callable[..., Litestar], dev_settings: Settings
) -> None:
    settings = dataclasses.replace(
        dev_settings, http=dataclasses.replace(dev_settings.http, demo_page=False)
    )
    async with AsyncTestClient(app=make_app(settings=settings)) as client:
        assert (await client.get("/demo")).status_code == 404


async def test_demo_routes_stay_out_of_the_openapi_document(dev_client: Client) -> None:
    paths = (await dev_client.get("/schema/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/demo")]


# ------------------------------------------------------------------ assets and config


async def test_demo_script_is_served_as_javascript(dev_client: Client) -> None:
    response = await dev_client.get("/demo/assets/demo.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")


async def test_the_web_client_the_page_imports_is_served_as_javascript(
    dev_client: Client,
) -> None:
    response = await dev_client.get("/demo/assets/ivs-token-client.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "export function createTokenSource" in response.text


async def test_unknown_demo_asset_is_a_404_problem(dev_client: Client) -> None:
    response = await dev_client.get("/demo/assets/..%2Fapi%2Fdemo.py")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_config_offers_the_demo_stage_and_demo_users_in_dev_mode(
    dev_client: Client, stage_arn: str
) -> None:
    config = (await dev_client.get("/demo/config.json")).json()
    assert config["stageArn"] == stage_arn
    assert config["mintUserTokens"] is True
    assert config["tokenEndpoint"] == "/v1/participant-tokens"


async def test_config_offers_no_demo_users_outside_dev_mode(
    make_app: Callable[..., Litestar], demo_settings: Settings
) -> None:
    async with AsyncTestClient(app=make_app(settings=demo_settings)) as client:
        config = (await client.get("/demo/config.json")).json()
    assert config["mintUserTokens"] is False


async def test_config_says_the_sdk_is_absent_and_how_to_install_it(dev_client: Client) -> None:
    sdk = (await dev_client.get("/demo/config.json")).json()["sdk"]
    assert sdk["available"] is False
    assert "make web-sdk" in sdk["hint"]


async def test_absent_sdk_bundle_is_a_404_problem(dev_client: Client) -> None:
    response = await dev_client.get(SDK_URL)
    assert response.status_code == 404
    assert "make web-sdk" in response.json()["detail"]


async def test_installed_sdk_bundle_is_served_from_the_sdk_folder(
    make_app: Callable[..., Litestar], dev_settings: Settings, tmp_path: Path
) -> None:
    bundle = tmp_path / "sdk" / SDK_BUNDLE
    bundle.parent.mkdir(parents=True)
    bundle.write_text("window.IVSBroadcastClient = {};", encoding="utf-8")
    settings = dataclasses.replace(
        dev_settings, http=dataclasses.replace(dev_settings.http, web_sdk_dir=tmp_path / "sdk")
    )
    async with AsyncTestClient(app=make_app(settings=settings)) as client:
        config = (await client.get("/demo/config.json")).json()
        response = await client.get(SDK_URL)
    assert config["sdk"]["url"] == SDK_URL
    assert response.text == "window.IVSBroadcastClient = {};"
    assert response.headers["content-type"].startswith("text/javascript")


# ------------------------------------------------------------------ demo user JWTs


async def test_demo_user_token_route_does_not_exist_outside_dev_mode(
    make_app: Callable[..., Litestar], demo_settings: Settings
) -> None:
    async with AsyncTestClient(app=make_app(settings=demo_settings)) as client:
        response = await client.post("/demo/user-token", json={"sub": "u", "roles": []})
    assert response.status_code in {404, 405}


async def test_demo_user_jwt_carries_the_chosen_user_and_roles(
    loopback_dev_client: httpx.AsyncClient,
) -> None:
    response = await loopback_dev_client.post(
        "/demo/user-token", json={"sub": "sam", "roles": ["publisher"]}
    )
    assert response.status_code == 201
    claims = jwt.decode(response.json()["token"], SHARED_SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["roles"]) == ("sam", ["publisher"])


async def test_demo_user_jwt_lives_one_hour(loopback_dev_client: httpx.AsyncClient) -> None:
    response = await loopback_dev_client.post("/demo/user-token", json={"sub": "sam"})
    claims = jwt.decode(response.json()["token"], SHARED_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600


async def test_demo_user_jwt_gets_a_participant_token_from_the_real_endpoint(
    loopback_dev_client: httpx.AsyncClient, stage_arn: str
) -> None:
    minted = await loopback_dev_client.post(
        "/demo/user-token", json={"sub": "sam", "roles": ["publisher"]}
    )
    response = await loopback_dev_client.post(
        "/v1/participant-tokens",
        json={"stageArn": stage_arn, "capabilities": ["PUBLISH"]},
        headers=bearer(minted.json()["token"]),
    )
    assert response.status_code == 201, response.text
    assert response.json()["userId"] == "sam"


async def test_demo_user_jwt_is_refused_to_callers_beyond_loopback(dev_client: Client) -> None:
    # The test client's peer is "testclient", as a caller on the network would be.
    response = await dev_client.post("/demo/user-token", json={"sub": "sam", "roles": []})
    assert response.status_code == 403
    assert "loopback" in response.json()["detail"]


async def test_demo_user_request_with_an_unknown_field_is_a_400(
    loopback_dev_client: httpx.AsyncClient,
) -> None:
    response = await loopback_dev_client.post(
        "/demo/user-token", json={"sub": "sam", "role": "publisher"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "role", "message": "unknown field"}]


# ------------------------------------------------------------------ CORS


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


@pytest.fixture
async def cors_client(
    signing_key: SigningKey, make_app: Callable[..., Litestar], cors_settings: Settings
) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=make_app(settings=cors_settings)) as test_client:
        yield test_client


async def test_preflight_from_an_allowed_origin_allows_that_origin_only(
    cors_client: Client,
) -> None:
    response = await cors_client.options("/v1/participant-tokens", headers=preflight(FRONTEND))
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert response.headers["vary"] == "Origin"


async def test_preflight_allows_the_authorization_header(cors_client: Client) -> None:
    response = await cors_client.options("/v1/participant-tokens", headers=preflight(FRONTEND))
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed


async def test_preflight_never_allows_credentials(cors_client: Client) -> None:
    response = await cors_client.options("/v1/participant-tokens", headers=preflight(FRONTEND))
    assert "access-control-allow-credentials" not in response.headers


async def test_preflight_from_another_origin_is_refused(cors_client: Client) -> None:
    response = await cors_client.options(
        "/v1/participant-tokens", headers=preflight("https://evil.example")
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_token_response_to_an_allowed_origin_exposes_the_request_id(
    cors_client: Client, stage_arn: str, user_token: Callable[..., str]
) -> None:
    response = await cors_client.post(
        "/v1/participant-tokens",
        json={"stageArn": stage_arn},
        headers={**bearer(user_token()), "Origin": FRONTEND},
    )
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert "X-Request-Id" in response.headers["access-control-expose-headers"]


async def test_token_response_to_another_origin_has_no_allow_origin(
    cors_client: Client, stage_arn: str, user_token: Callable[..., str]
) -> None:
    response = await cors_client.post(
        "/v1/participant-tokens",
        json={"stageArn": stage_arn},
        headers={**bearer(user_token()), "Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in response.headers


async def test_without_configured_origins_there_are_no_cors_headers(
    client: Client, stage_arn: str, user_token: Callable[..., str]
) -> None:
    response = await client.post(
        "/v1/participant-tokens",
        json={"stageArn": stage_arn},
        headers={**bearer(user_token()), "Origin": FRONTEND},
    )
    assert not [name for name in response.headers if name.startswith("access-control-")]
