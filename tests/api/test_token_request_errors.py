"""Bad requests to POST /v1/participant-tokens: a clear problem+json, never a 500."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.api.conftest import SHARED_SECRET, MintUserToken, bearer
from token_service.config import load_settings

pytestmark = pytest.mark.usefixtures("signing_key")
URL = "/v1/participant-tokens"
Client = AsyncTestClient[Litestar]


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    assert body["requestId"] == response.headers["x-request-id"]
    return body


async def _post_raw(client: Client, token: str, content: bytes) -> Any:
    headers = {**bearer(token), "Content-Type": "application/json"}
    return await client.post(URL, content=content, headers=headers)


# --- 401 -----------------------------------------------------------------------------


async def test_missing_authorization_is_401_with_www_authenticate(
    client: Client, stage_arn: str
) -> None:
    response = await client.post(URL, json={"stageArn": stage_arn})
    _problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def _hs256(claims: dict[str, Any], secret: str = SHARED_SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


@pytest.mark.parametrize(
    ("name", "make_token"),
    [
        ("garbage", lambda: "not-a-jwt"),
        ("expired", lambda: _hs256({"sub": "u", "exp": int(time.time()) - 3600})),
        ("no exp", lambda: _hs256({"sub": "u"})),
        ("wrong secret", lambda: _hs256({"sub": "u", "exp": int(time.time()) + 60}, "y" * 40)),
        (
            "alg none",
            lambda: jwt.encode({"sub": "u", "exp": int(time.time()) + 60}, None, algorithm="none"),
        ),
    ],
)
async def test_invalid_app_token_is_401(
    client: Client, stage_arn: str, name: str, make_token: Any
) -> None:
    token = make_token()
    response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    body = _problem(response, 401)
    assert token not in response.text
    assert body["detail"]


@pytest.mark.parametrize(("claim", "value"), [("iss", "https://evil.example"), ("aud", "other")])
async def test_wrong_issuer_or_audience_is_401(
    make_app: Any, env: dict[str, str], stage_arn: str, claim: str, value: str
) -> None:
    settings = load_settings(
        {
            **env,
            "TOKEN_SERVICE_AUTH_ISSUER": "https://app.example",
            "TOKEN_SERVICE_AUTH_AUDIENCE": "ivs",
        }
    )
    claims = {"sub": "u", "exp": int(time.time()) + 60, "iss": "https://app.example", "aud": "ivs"}
    claims[claim] = value
    async with AsyncTestClient(app=make_app(settings=settings)) as client:
        ok = await client.post(
            URL,
            json={"stageArn": stage_arn},
            headers=bearer(
                _hs256({**claims, claim: {"iss": "https://app.example", "aud": "ivs"}[claim]})
            ),
        )
        assert ok.status_code == 201, ok.text
        response = await client.post(
            URL, json={"stageArn": stage_arn}, headers=bearer(_hs256(claims))
        )
    _problem(response, 401)


# --- 403 -----------------------------------------------------------------------------


async def test_publish_without_the_publisher_role_is_403_naming_the_rule(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    response = await client.post(
        URL,
        json={"stageArn": stage_arn, "capabilities": ["PUBLISH"]},
        headers=bearer(user_token("viewer")),
    )
    body = _problem(response, 403)
    assert "PUBLISH" in body["detail"]
    assert body["rule"]


async def test_duration_beyond_the_policy_maximum_is_403(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    response = await client.post(
        URL, json={"stageArn": stage_arn, "durationMinutes": 721}, headers=bearer(user_token())
    )
    body = _problem(response, 403)
    assert "720" in body["detail"]


async def test_stage_in_a_region_this_service_does_not_serve_is_403(
    client: Client, user_token: MintUserToken
) -> None:
    response = await client.post(
        URL,
        json={"stageArn": "arn:aws:ivs:eu-west-1:123456789012:stage/AbCdEf123456"},
        headers=bearer(user_token()),
    )
    _problem(response, 403)


# --- 400 / 413 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"stageArn": ', None),
        (b'{"stageArn": "\xff\xfe"}', "body"),
        (b"[" * 5000 + b"]" * 5000, None),
        (b'"just a string"', None),
        (b"", None),
    ],
    ids=["truncated", "invalid-utf8", "deeply-nested", "not-an-object", "empty"],
)
async def test_malformed_body_is_400(
    client: Client, user_token: MintUserToken, content: bytes, field: str | None
) -> None:
    body = _problem(await _post_raw(client, user_token(), content), 400)
    if field:
        assert body["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"durationMinute": 5}, "durationMinute"),
        ({"durationMinutes": "60"}, "durationMinutes"),
        ({"durationMinutes": 0}, "durationMinutes"),
        ({"durationMinutes": 20161}, "durationMinutes"),
        ({"capabilities": ["ADMIN"]}, "capabilities"),
        ({"capabilities": "PUBLISH"}, "capabilities"),
        ({"attributes": {"a": 1}}, "attributes"),
    ],
    ids=[
        "unknown-field",
        "string-duration",
        "zero-duration",
        "too-long",
        "bad-cap",
        "cap-str",
        "attr-int",
    ],
)
async def test_invalid_field_is_400_naming_the_field(
    client: Client, user_token: MintUserToken, stage_arn: str, extra: dict[str, Any], field: str
) -> None:
    response = await client.post(
        URL, json={"stageArn": stage_arn, **extra}, headers=bearer(user_token())
    )
    body = _problem(response, 400)
    assert body["errors"][0]["field"].startswith(field)


async def test_missing_stage_arn_is_400_naming_it(
    client: Client, user_token: MintUserToken
) -> None:
    body = _problem(await client.post(URL, json={}, headers=bearer(user_token())), 400)
    assert body["errors"] == [{"field": "stageArn", "message": "required"}]


async def test_malformed_stage_arn_is_400(client: Client, user_token: MintUserToken) -> None:
    response = await client.post(URL, json={"stageArn": "stage-1"}, headers=bearer(user_token()))
    assert _problem(response, 400)["errors"][0]["field"] == "stageArn"


async def test_attributes_over_one_kilobyte_of_utf8_are_400(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    # 400 characters, but 1,200 bytes in UTF-8.
    response = await client.post(
        URL,
        json={"stageArn": stage_arn, "attributes": {"bio": "€" * 400}},
        headers=bearer(user_token()),
    )
    assert _problem(response, 400)["errors"][0]["field"].startswith("attributes")


async def test_body_over_16_kib_is_413(client: Client, user_token: MintUserToken) -> None:
    _problem(await _post_raw(client, user_token(), b" " * (16 * 1024 + 1)), 413)


async def test_caller_request_id_is_echoed(client: Client, user_token: MintUserToken) -> None:
    response = await client.post(
        URL, json={}, headers={**bearer(user_token()), "X-Request-Id": "req-abcdef123"}
    )
    assert response.headers["x-request-id"] == "req-abcdef123"
    assert response.json()["requestId"] == "req-abcdef123"


async def test_unknown_route_is_a_problem_404(client: Client) -> None:
    _problem(await client.get("/v1/nothing-here"), 404)
