"""Admin routes on their own port (TOKEN_SERVICE_ADMIN_PORT): which listener serves what.

The app tells listeners apart by the connection's local port; the test client sets it
through its base URL, as uvicorn does from the socket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import ADMIN_TOKEN, MintUserToken, bearer
from token_service.config import Settings, load_settings
from token_service.keys import SigningKey

PUBLIC_PORT = 9080
ADMIN_PORT = 9081


@pytest.fixture
def split_settings(env: dict[str, str]) -> Settings:
    return load_settings(
        {**env, "TOKEN_SERVICE_PORT": str(PUBLIC_PORT), "TOKEN_SERVICE_ADMIN_PORT": str(ADMIN_PORT)}
    )


@pytest.fixture
def split_app(
    signing_key: SigningKey, make_app: Callable[..., Litestar], split_settings: Settings
) -> Litestar:
    return make_app(settings=split_settings)


def on(app: Litestar, port: int) -> AsyncTestClient[Litestar]:
    return AsyncTestClient(app=app, base_url=f"http://testserver.local:{port}")


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize(
    "path",
    ["/admin/keys", "//admin/keys", "/admin/keys/", "/%61dmin/keys", "/ADMIN/keys"],
)
async def test_public_listener_does_not_serve_admin_routes(split_app: Litestar, path: str) -> None:
    async with on(split_app, PUBLIC_PORT) as client:
        response = await client.get(path, headers=ADMIN)
    assert response.status_code == 404


async def test_public_listener_does_not_serve_metrics(split_app: Litestar) -> None:
    async with on(split_app, PUBLIC_PORT) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_admin_listener_serves_admin_routes_and_metrics(split_app: Litestar) -> None:
    async with on(split_app, ADMIN_PORT) as client:
        assert (await client.get("/admin/keys", headers=ADMIN)).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_admin_listener_still_asks_for_the_admin_token(split_app: Litestar) -> None:
    async with on(split_app, ADMIN_PORT) as client:
        assert (await client.get("/admin/keys")).status_code == 401


async def test_admin_listener_does_not_issue_tokens(
    split_app: Litestar, stage_arn: str, user_token: MintUserToken
) -> None:
    async with on(split_app, ADMIN_PORT) as client:
        response = await client.post(
            "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user_token())
        )
    assert response.status_code == 404


async def test_public_listener_issues_tokens(
    split_app: Litestar, stage_arn: str, user_token: MintUserToken
) -> None:
    async with on(split_app, PUBLIC_PORT) as client:
        response = await client.post(
            "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user_token())
        )
    assert response.status_code == 201


@pytest.mark.parametrize("port", [PUBLIC_PORT, ADMIN_PORT])
async def test_probes_answer_on_both_listeners(split_app: Litestar, port: int) -> None:
    async with on(split_app, port) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_without_an_admin_port_one_listener_serves_everything(
    signing_key: SigningKey, make_app: Callable[..., Any]
) -> None:
    async with on(make_app(), PUBLIC_PORT) as client:
        assert (await client.get("/admin/keys", headers=ADMIN)).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
