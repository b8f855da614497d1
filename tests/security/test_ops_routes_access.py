"""`/metrics` and `/schema` on the service port are a choice, not an accident (issue 19,
item 8): `TOKEN_SERVICE_METRICS_PUBLIC` and `TOKEN_SERVICE_SCHEMA_PUBLIC` say whether
anyone may read them there. Not public, they answer 404 on the service port (the answer
of a path that does not exist: nothing advertised), and stay reachable on the admin port
when there is one, or with an admin token when there is not. The defaults keep the
documented contract: both public on a single port; with an admin port, `/metrics` moves
there and the schema stays public. A production-like app (not `--dev`)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.security.conftest import serving
from tests.support.redis_server import free_port
from token_service.bootstrap.app import create_app
from token_service.config import load_settings

SHARED_SECRET = "ops-routes-shared-secret-" + "o" * 32
ADMIN_TOKEN = "ops-routes-admin-" + "a" * 24
PUBLIC_PORT = 9080
ADMIN_PORT = 9081
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PRIVATE = {"TOKEN_SERVICE_METRICS_PUBLIC": "false", "TOKEN_SERVICE_SCHEMA_PUBLIC": "false"}
SPLIT = {"TOKEN_SERVICE_PORT": str(PUBLIC_PORT), "TOKEN_SERVICE_ADMIN_PORT": str(ADMIN_PORT)}
OPS_PATHS = ["/metrics", "/schema/openapi.json", "/schema", "/schema/swagger"]
Client = AsyncTestClient[Litestar]
MakeClient = Callable[..., Client]


@pytest.fixture
def on(module_env: dict[str, str], module_ivs: Any) -> MakeClient:
    """A client of a fresh app with `env` added, connected to `port` (the listener)."""

    def make(env: dict[str, str], port: int = PUBLIC_PORT) -> Client:
        settings = load_settings(
            module_env
            | {
                "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
                "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
                "TOKEN_SERVICE_ADMIN_AUTH_FAILURE_RATE": "3/hour",
            }
            | env
        )
        app = create_app(settings, ivs_client=module_ivs)
        return AsyncTestClient(app=app, base_url=f"http://testserver.local:{port}")

    return make


@pytest.fixture
async def private(on: MakeClient) -> AsyncIterator[Client]:
    """One listener, both operational routes not public."""
    async with on(PRIVATE) as client:
        yield client


# ---------------------------------------------------------------- one listener, not public


@pytest.mark.parametrize("path", OPS_PATHS)
async def test_a_private_ops_route_is_404_without_a_token(private: Client, path: str) -> None:
    assert (await private.get(path)).status_code == 404


@pytest.mark.parametrize("path", ["/metrics", "/schema/openapi.json"])
async def test_a_private_ops_route_does_not_answer_a_preflight_either(
    private: Client, path: str
) -> None:
    assert (await private.options(path)).status_code == 404


async def test_a_private_ops_route_answers_as_a_path_that_does_not_exist(
    private: Client,
) -> None:
    hidden = (await private.get("/metrics")).json()
    missing = (await private.get("/no-such-route")).json()

    assert {k: v for k, v in hidden.items() if k != "requestId"} == {
        k: v for k, v in missing.items() if k != "requestId"
    }


@pytest.mark.parametrize("path", OPS_PATHS)
async def test_a_private_ops_route_answers_an_admin_token(private: Client, path: str) -> None:
    assert (await private.get(path, headers=ADMIN)).status_code == 200


async def test_a_wrong_token_on_a_private_ops_route_is_404_and_counted_as_a_failure(
    private: Client,
) -> None:
    response = await private.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    metrics = (await private.get("/metrics", headers=ADMIN)).text

    assert response.status_code == 404
    assert re.search(r'admin_auth_failures_total\{reason="invalid"\} 1\.0', metrics)


async def test_wrong_tokens_on_a_private_ops_route_spend_the_admin_allowance(
    private: Client,
) -> None:
    # Else the route would be an oracle for guessing admin tokens without a throttle.
    wrong = {"Authorization": "Bearer not-the-token"}
    answers = [(await private.get("/metrics", headers=wrong)).status_code for _ in range(4)]

    assert answers == [404] * 4
    assert (await private.get("/admin/keys", headers=ADMIN)).status_code == 429


# ---------------------------------------------------------------- the defaults


@pytest.mark.parametrize("path", ["/metrics", "/schema/openapi.json"])
async def test_by_default_one_listener_serves_the_ops_routes_to_anyone(
    on: MakeClient, path: str
) -> None:
    async with on({}) as client:
        assert (await client.get(path)).status_code == 200


async def test_by_default_an_admin_port_takes_metrics_off_the_public_port(
    on: MakeClient,
) -> None:
    async with on(SPLIT) as public, on(SPLIT, ADMIN_PORT) as admin:
        assert (await public.get("/metrics")).status_code == 404
        assert (await admin.get("/metrics")).status_code == 200


async def test_by_default_the_schema_stays_on_the_public_port(on: MakeClient) -> None:
    async with on(SPLIT) as public:
        assert (await public.get("/schema/openapi.json")).status_code == 200


# ---------------------------------------------------------------- with an admin port


@pytest.mark.parametrize("path", OPS_PATHS)
async def test_a_private_ops_route_is_404_on_the_public_port_even_with_an_admin_token(
    on: MakeClient, path: str
) -> None:
    async with on(PRIVATE | SPLIT) as public:
        assert (await public.get(path, headers=ADMIN)).status_code == 404


@pytest.mark.parametrize("path", OPS_PATHS)
async def test_a_private_ops_route_is_served_on_the_admin_port(on: MakeClient, path: str) -> None:
    async with on(PRIVATE | SPLIT, ADMIN_PORT) as admin:
        assert (await admin.get(path)).status_code == 200


async def test_metrics_made_public_are_served_on_the_public_port_too(on: MakeClient) -> None:
    env = SPLIT | {"TOKEN_SERVICE_METRICS_PUBLIC": "true"}
    async with on(env) as public:
        assert (await public.get("/metrics")).status_code == 200


# ---------------------------------------------------------------- a real server


def test_a_real_server_hides_private_ops_routes_on_its_service_port(
    module_env: dict[str, str],
) -> None:
    admin_port = free_port()
    env = (
        module_env
        | PRIVATE
        | {
            "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
            "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
            "TOKEN_SERVICE_ADMIN_PORT": str(admin_port),
        }
    )
    with serving(env) as base:
        public = [httpx.get(f"{base}{path}", timeout=30).status_code for path in OPS_PATHS]
        admin_base = f"http://127.0.0.1:{admin_port}"
        admin = [httpx.get(f"{admin_base}{path}", timeout=30).status_code for path in OPS_PATHS]

    assert public == [404] * len(OPS_PATHS)
    assert admin == [200] * len(OPS_PATHS)
