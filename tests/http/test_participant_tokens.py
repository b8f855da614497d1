"""POST /v1/participant-tokens in local mode: what a frontend app gets, and what IVS accepts."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import MintUserToken, bearer, emulator_stats, join
from token_service.keys import SigningKey

pytestmark = pytest.mark.usefixtures("signing_key")
URL = "/v1/participant-tokens"
Client = AsyncTestClient[Litestar]


def _segment(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(_segment(token, 1))
    return claims


async def _issue(client: Client, token: str, stage_arn: str, **body: Any) -> dict[str, Any]:
    response = await client.post(URL, json={"stageArn": stage_arn, **body}, headers=bearer(token))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_subscriber_gets_a_subscribe_only_token_by_default(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    body = await _issue(client, user_token("viewer"), stage_arn)
    assert body["capabilities"] == ["SUBSCRIBE"]
    assert _claims(body["token"])["capabilities"] == {
        "allow_publish": False,
        "allow_subscribe": True,
    }


async def test_publisher_gets_publish_and_subscribe_by_default(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    body = await _issue(client, user_token("host", roles=("publisher",)), stage_arn)
    assert body["capabilities"] == ["PUBLISH", "SUBSCRIBE"]
    assert _claims(body["token"])["capabilities"] == {
        "allow_publish": True,
        "allow_subscribe": True,
    }


@pytest.mark.parametrize("asked", [["PUBLISH"], ["SUBSCRIBE"], ["PUBLISH", "SUBSCRIBE"]])
async def test_publisher_gets_exactly_the_capabilities_asked_for(
    client: Client, user_token: MintUserToken, stage_arn: str, asked: list[str]
) -> None:
    body = await _issue(
        client, user_token("host", roles=("publisher",)), stage_arn, capabilities=asked
    )
    assert body["capabilities"] == sorted(asked)
    assert _claims(body["token"])["capabilities"] == {
        "allow_publish": "PUBLISH" in asked,
        "allow_subscribe": "SUBSCRIBE" in asked,
    }


async def test_response_carries_every_contract_field_and_no_store(
    client: Client, user_token: MintUserToken, stage_arn: str, signing_key: SigningKey
) -> None:
    response = await client.post(
        URL,
        json={"stageArn": stage_arn, "durationMinutes": 30, "attributes": {"displayName": "Sam"}},
        headers=bearer(user_token("sam")),
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {
        "token",
        "participantId",
        "userId",
        "stageArn",
        "capabilities",
        "attributes",
        "durationMinutes",
        "expirationTime",
        "signer",
        "keyArn",
    }
    assert body["userId"] == "sam"
    assert body["stageArn"] == stage_arn
    assert body["attributes"] == {"displayName": "Sam"}
    assert body["durationMinutes"] == 30
    assert body["signer"] == "local"
    assert body["keyArn"] == signing_key.arn
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["expirationTime"])


async def test_every_claim_follows_the_ivs_self_signed_token_spec(
    client: Client, user_token: MintUserToken, stage: dict[str, Any], signing_key: SigningKey
) -> None:
    body = await _issue(
        client,
        user_token("sam", roles=("publisher",)),
        stage["arn"],
        durationMinutes=45,
        attributes={"displayName": "Sam"},
    )
    header = json.loads(_segment(body["token"], 0))
    claims = _claims(body["token"])
    assert header == {"alg": "ES384", "typ": "JWT", "kid": signing_key.arn}
    assert isinstance(claims["iat"], int)
    assert isinstance(claims["exp"], int)
    assert claims["exp"] - claims["iat"] == 45 * 60
    assert claims["jti"] == body["participantId"]
    assert re.fullmatch(r"[A-Za-z0-9]{1,64}", claims["jti"])
    assert claims["resource"] == stage["arn"]
    assert claims["topic"] == stage["arn"].rsplit("/", 1)[1]
    assert claims["events_url"] == stage["endpoints"]["events"]
    assert claims["whip_url"] == stage["endpoints"]["whip"]
    assert claims["version"] == "1.0"
    assert claims["user_id"] == "sam"
    assert claims["attributes"] == {"displayName": "Sam"}
    assert set(claims) == {
        "exp",
        "iat",
        "jti",
        "resource",
        "topic",
        "events_url",
        "whip_url",
        "capabilities",
        "version",
        "user_id",
        "attributes",
    }


async def test_iat_is_the_time_of_issue(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    before = int(time.time())
    body = await _issue(client, user_token(), stage_arn)
    assert before - 1 <= _claims(body["token"])["iat"] <= int(time.time()) + 1


async def test_each_token_gets_a_fresh_participant_id(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    ids = {(await _issue(client, user_token(), stage_arn))["participantId"] for _ in range(5)}
    assert len(ids) == 5


async def test_signature_verifies_with_the_public_key_ivs_holds(
    client: Client, user_token: MintUserToken, stage_arn: str, ivs_client: Any
) -> None:
    body = await _issue(client, user_token(), stage_arn)
    key = ivs_client.get_public_key(arn=body["keyArn"])["publicKey"]
    public_key = load_pem_public_key(key["publicKeyMaterial"].encode())
    claims = jwt.decode(body["token"], public_key, algorithms=["ES384"])  # type: ignore[arg-type]
    assert claims["jti"] == body["participantId"]
    # Raw R||S, 48 bytes each for P-384: never DER.
    assert len(_segment(body["token"], 2)) == 96


async def test_claims_json_is_ascii_only_for_non_ascii_attributes(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    body = await _issue(client, user_token(), stage_arn, attributes={"displayName": "Zoë 🎤"})
    raw = _segment(body["token"], 1)
    assert raw.isascii()
    assert json.loads(raw)["attributes"] == {"displayName": "Zoë 🎤"}


async def test_token_is_base64url_without_padding_or_whitespace(
    client: Client, user_token: MintUserToken, stage_arn: str
) -> None:
    body = await _issue(client, user_token(), stage_arn)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", body["token"])


async def test_token_joins_the_stage_and_shows_in_list_participants(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any, ivs_client: Any
) -> None:
    body = await _issue(client, user_token("joiner", roles=("publisher",)), stage_arn)
    joined = join(emulator, body["token"])
    assert joined.status_code == 200, joined.text
    assert joined.json()["participantId"] == body["participantId"]
    session_id = ivs_client.get_stage(arn=stage_arn)["stage"]["activeSessionId"]
    participants = ivs_client.list_participants(stageArn=stage_arn, sessionId=session_id)
    listed = {(p["participantId"], p["userId"]) for p in participants["participants"]}
    assert (body["participantId"], "joiner") in listed


async def test_stage_endpoints_are_fetched_once_and_then_cached(
    client: Client, user_token: MintUserToken, stage_arn: str, emulator: Any
) -> None:
    for _ in range(3):
        await _issue(client, user_token(), stage_arn)
    stats = emulator_stats(emulator)
    assert stats["GetStage"]["calls"] == 1


async def test_unknown_stage_is_404(client: Client, user_token: MintUserToken) -> None:
    response = await client.post(
        URL,
        json={"stageArn": "arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage1"},
        headers=bearer(user_token()),
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("stage-not-found")


async def test_unknown_stage_is_cached_so_a_flood_costs_one_get_stage(
    client: Client, user_token: MintUserToken, emulator: Any
) -> None:
    arn = "arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage2"
    for _ in range(5):
        response = await client.post(URL, json={"stageArn": arn}, headers=bearer(user_token()))
        assert response.status_code == 404
    stats = emulator_stats(emulator)
    assert stats["GetStage"]["calls"] == 1
