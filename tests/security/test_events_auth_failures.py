"""A refused EventBridge delivery is never silent (issue 19, item 8, the same class as admin
authentications): each missing or wrong events secret on `POST /v1/ivs-events` is one
WARNING (`events_auth_failed`: client IP, method, path, reason), never the presented
value. A wrong secret in the EventBridge connection would otherwise lose every event
without a word. A production-like app (not `--dev`)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient

from token_service.bootstrap.app import create_app
from token_service.config import load_settings

SHARED_SECRET = "events-auth-shared-secret-" + "s" * 32
EVENTS_SECRET = "events-auth-events-secret-" + "e" * 32
PRESENTED = secrets.token_hex(24)
Client = AsyncTestClient[Litestar]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(module_env: dict[str, str], module_ivs: Any) -> AsyncIterator[Client]:
    settings = load_settings(
        module_env
        | {
            "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
            "TOKEN_SERVICE_EVENTS_SECRET": EVENTS_SECRET,
        }
    )
    async with AsyncTestClient(app=create_app(settings, ivs_client=module_ivs)) as test_client:
        yield test_client


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "events_auth_failed"]


async def deliver(client: Client, headers: dict[str, str]) -> Any:
    return await client.post("/v1/ivs-events", content=b"{}", headers=headers)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("headers", "reason"),
    [({"Authorization": f"Bearer {PRESENTED}"}, "invalid"), ({}, "missing")],
    ids=["wrong secret", "no secret"],
)
async def test_a_refused_delivery_is_one_warning_naming_why(
    client: Client, caplog: pytest.LogCaptureFixture, headers: dict[str, str], reason: str
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await deliver(client, headers)

    assert response.status_code == 401
    assert [
        (
            r.levelno,
            getattr(r, "reason", None),
            getattr(r, "path", None),
            getattr(r, "method", None),
        )
        for r in refusals(caplog)
    ] == [(logging.WARNING, reason, "/v1/ivs-events", "POST")]


@pytest.mark.asyncio(loop_scope="module")
async def test_the_warning_never_holds_the_presented_value(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await deliver(client, {"Authorization": f"Bearer {PRESENTED}"})

    assert PRESENTED not in caplog.text
    assert PRESENTED[:8] not in caplog.text
    assert EVENTS_SECRET not in caplog.text


@pytest.mark.asyncio(loop_scope="module")
async def test_an_accepted_secret_logs_no_refusal(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await deliver(client, {"Authorization": f"Bearer {EVENTS_SECRET}"})

    assert refusals(caplog) == []
