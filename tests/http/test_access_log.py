"""The access log: one JSON line per request, whatever its status, by route template, never
with a header value, a query string, a body or a token; probes off, on or sampled."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import ADMIN_TOKEN, MintUserToken, bearer
from token_service.config import load_settings
from token_service.observability.logs import JsonFormatter

pytestmark = pytest.mark.usefixtures("signing_key")
URL = "/v1/participant-tokens"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.raw.append(self.format(record))

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.raw]


@pytest.fixture
def access() -> Iterator[_Lines]:
    handler = _Lines()
    logger = logging.getLogger("token_service.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def _app(make_app: Callable[..., Litestar], env: dict[str, str], **extra: str) -> Litestar:
    return make_app(settings=load_settings({**env, **extra}))


async def test_an_issued_token_is_one_line_with_route_status_duration_ip_and_bytes(
    client: AsyncTestClient[Litestar], access: _Lines, user_token: MintUserToken, stage_arn: str
) -> None:
    response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(user_token()))

    (line,) = access.lines
    assert line["event"] == "http_request"
    assert line["level"] == "info"
    assert (line["method"], line["route"], line["status"]) == ("POST", URL, 201)
    assert line["durationMs"] > 0
    assert line["bytes"] == len(response.content)
    assert line["requestId"] == response.headers["x-request-id"]


async def test_a_refused_credential_is_logged_with_its_401(
    client: AsyncTestClient[Litestar], access: _Lines, stage_arn: str
) -> None:
    await client.post(URL, json={"stageArn": stage_arn}, headers=bearer("not-a-jwt"))

    (line,) = access.lines
    assert (line["route"], line["status"]) == (URL, 401)


async def test_an_unknown_path_is_logged_without_its_raw_path(
    client: AsyncTestClient[Litestar], access: _Lines
) -> None:
    await client.get("/wp-admin/secret-looking-path")

    (line,) = access.lines
    assert (line["route"], line["status"]) == ("<unmatched>", 404)
    assert "secret-looking-path" not in access.raw[0]


async def test_an_admin_lookup_is_logged_by_its_template_not_its_participant_id(
    client: AsyncTestClient[Litestar], access: _Lines
) -> None:
    await client.get("/admin/participants/abcdEFGH1234", headers=bearer(ADMIN_TOKEN))

    (line,) = access.lines
    assert line["route"] == "/admin/participants/{participantId}"
    assert "abcdEFGH1234" not in access.raw[0]


async def test_no_line_holds_a_token_a_header_value_or_the_query(
    client: AsyncTestClient[Litestar], access: _Lines, user_token: MintUserToken, stage_arn: str
) -> None:
    app_jwt = user_token()
    response = await client.post(
        URL + "?debug=query-value",
        json={"stageArn": stage_arn, "attributes": {"seat": "body-value"}},
        headers={**bearer(app_jwt), "User-Agent": "agent-value"},
    )

    text = "\n".join(access.raw)
    for secret in (app_jwt, response.json()["token"], "query-value", "body-value", "agent-value"):
        assert secret not in text


async def test_a_server_error_is_logged_as_a_warning(
    tmp_path: Path,
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    access: _Lines,
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    # No key in this directory: the token route answers 503.
    app = _app(make_app, env, TOKEN_SERVICE_KEYS_DIR=str(tmp_path))
    async with AsyncTestClient(app=app) as client:
        response = await client.post(
            URL, json={"stageArn": stage_arn}, headers=bearer(user_token())
        )

    (line,) = access.lines
    assert line["status"] == response.status_code == 503
    assert line["level"] == "warning"


async def test_probes_are_left_out_by_default(
    client: AsyncTestClient[Litestar], access: _Lines
) -> None:
    await client.get("/healthz")
    await client.get("/readyz")

    assert access.lines == []


async def test_probes_are_logged_when_asked(
    make_app: Callable[..., Litestar], env: dict[str, str], access: _Lines
) -> None:
    app = _app(make_app, env, TOKEN_SERVICE_ACCESS_LOG_PROBES="on")
    async with AsyncTestClient(app=app) as client:
        await client.get("/healthz")

    assert [line["route"] for line in access.lines] == ["/healthz"]


@pytest.mark.parametrize(("rate", "logged"), [("1", 20), ("0", 0)])
async def test_sampled_probes_are_logged_at_the_configured_share(
    make_app: Callable[..., Litestar], env: dict[str, str], access: _Lines, rate: str, logged: int
) -> None:
    app = _app(
        make_app,
        env,
        TOKEN_SERVICE_ACCESS_LOG_PROBES="sampled",
        TOKEN_SERVICE_ACCESS_LOG_PROBE_SAMPLE_RATE=rate,
    )
    async with AsyncTestClient(app=app) as client:
        for _ in range(20):
            await client.get("/healthz")

    assert len(access.lines) == logged


async def test_the_access_log_can_be_turned_off(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    access: _Lines,
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    app = _app(make_app, env, TOKEN_SERVICE_ACCESS_LOG="false")
    async with AsyncTestClient(app=app) as client:
        await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(user_token()))

    assert access.lines == []
