"""Bad requests to POST /v1/participant-tokens: a clear problem+json, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import MintUserToken, bearer

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


# Hostile and invalid app tokens (expired, wrong secret, alg none, wrong issuer or
# audience...): tests/security/test_hostile_app_tokens.py.


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
        ({"durationMinutes": 60.5}, "durationMinutes"),
        ({"durationMinutes": 0}, "durationMinutes"),
        ({"durationMinutes": 20161}, "durationMinutes"),
        ({"capabilities": ["ADMIN"]}, "capabilities"),
        ({"capabilities": "PUBLISH"}, "capabilities"),
        ({"attributes": {"a": 1}}, "attributes"),
    ],
    ids=[
        "unknown-field",
        "string-duration",
        "fractional-duration",
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


async def test_a_whole_float_duration_is_that_integer(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    # JSON has one number type and JSON Schema calls 60.0 an integer (the fuzzer sent one).
    response = await client.post(
        URL, json={"stageArn": stage_arn, "durationMinutes": 60.0}, headers=bearer(user_token())
    )
    assert response.status_code == 201, response.text
    assert response.json()["durationMinutes"] == 60


async def test_missing_stage_arn_is_400_naming_it(
    client: Client, user_token: MintUserToken
) -> None:
    body = _problem(await client.post(URL, json={}, headers=bearer(user_token())), 400)
    assert body["errors"] == [{"field": "stageArn", "message": "required"}]


async def test_an_attribute_key_over_128_characters_is_400_naming_attributes(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    response = await client.post(
        URL,
        json={"stageArn": stage_arn, "attributes": {"k" * 129: "v"}},
        headers=bearer(user_token()),
    )
    assert _problem(response, 400)["errors"] == [
        {"field": "attributes", "message": "a key: Expected `str` of length <= 128"}
    ]


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
