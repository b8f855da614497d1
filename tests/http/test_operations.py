"""Health, readiness and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import ADMIN_TOKEN, SHARED_SECRET, bearer
from token_service.auth import mint_user_token
from token_service.config import load_settings

Client = AsyncTestClient[Litestar]


async def test_healthz_answers_200(client: Client) -> None:
    assert (await client.get("/healthz")).status_code == 200


async def test_readyz_is_200_with_a_key_and_ivs_reachable(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"signingKey": "ok", "ivs": "ok"},
        "states": {"signingKey": "ok", "ivs": "ok"},
    }


async def test_readyz_is_503_naming_the_missing_signing_key(
    make_app: Callable[..., Litestar],
) -> None:
    async with AsyncTestClient(app=make_app()) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["signingKey"] == "no active signing key"
    assert body["states"]["signingKey"] == "failed"


async def test_readyz_checks_redis_when_configured(
    make_app: Callable[..., Litestar], env: dict[str, str], clean_redis: str
) -> None:
    # The app builds its own client: the test client runs the app on its own event loop.
    settings = load_settings({**env, "TOKEN_SERVICE_REDIS_URL": clean_redis})
    async with AsyncTestClient(app=make_app(settings=settings)) as client:
        response = await client.get("/readyz")
    assert response.json()["checks"]["redis"] == "ok"


async def test_readyz_sets_one_gauge_series_per_check_and_status(client: Client) -> None:
    await client.get("/readyz")

    text = (await client.get("/metrics")).text

    assert 'token_service_readiness{check="ivs",status="ok"} 1.0' in text
    assert 'token_service_readiness{check="ivs",status="degraded"} 0.0' in text
    assert 'token_service_readiness{check="signingKey",status="failed"} 0.0' in text


async def test_token_request_without_an_active_key_is_503(
    make_app: Callable[..., Litestar], stage_arn: str
) -> None:

    token = mint_user_token(SHARED_SECRET.encode(), sub="u")
    async with AsyncTestClient(app=make_app()) as client:
        response = await client.post(
            "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(token)
        )
    assert response.status_code == 503
    assert "signing key" in response.json()["detail"]


@pytest.mark.usefixtures("signing_key")
async def test_openapi_documents_the_token_route_and_its_problems(client: Client) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    operation = response.json()["paths"]["/v1/participant-tokens"]["post"]
    assert {"201", "400", "401", "403", "404", "413", "429", "503"} <= set(operation["responses"])
    assert "requestBody" in operation


async def test_metrics_count_issued_tokens_without_secrets(client: Client, stage_arn: str) -> None:
    token = mint_user_token(SHARED_SECRET.encode(), sub="metric-user")
    issued = await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(token)
    )
    await client.post("/v1/participant-tokens", json={"stageArn": stage_arn})
    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'token_service_tokens_issued_total{signer="local"} 1.0' in text
    assert 'token_service_request_errors_total{code="unauthenticated"} 1.0' in text
    assert "token_service_issue_duration_seconds_bucket" in text
    for secret in (token, issued.json()["token"], issued.json()["participantId"], SHARED_SECRET):
        assert secret not in text


async def test_options_lists_every_method_of_the_path(
    client: Client,
) -> None:
    # Litestar's own answer named only the first handler's method: `Allow: OPTIONS, POST`.
    response = await client.options("/admin/bans", headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, OPTIONS, POST"
