"""`POST /_emulator/join`: what IVS checks when a participant joins with a token."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import (
    claims_for,
    join,
    new_p384_key,
    public_pem,
    self_signed,
)

FOURTEEN_DAYS = 14 * 24 * 3600


def _rejected(emulator, token: str) -> dict:
    response = join(emulator.url, token)
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"reason", "message"}
    return body


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_correctly_self_signed_token_joins(emulator, stage, private_key, key_arn) -> None:
    response = join(emulator.url, self_signed(private_key, key_arn, stage))

    assert response.status_code == 200
    assert response.json() == {
        "participantId": "participant1",
        "userId": "user-1",
        "stageArn": stage["arn"],
        "capabilities": ["PUBLISH", "SUBSCRIBE"],
    }


def test_joined_participant_is_listed_with_the_token_ids(
    emulator, ivs_client, stage, private_key, key_arn
) -> None:
    join(emulator.url, self_signed(private_key, key_arn, stage, jti="abc-123", user_id="sam"))

    session_id = ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"]
    participants = ivs_client.list_participants(stageArn=stage["arn"], sessionId=session_id)
    [participant] = participants["participants"]
    assert participant["participantId"] == "abc-123"
    assert participant["userId"] == "sam"
    assert participant["state"] == "CONNECTED"


def test_token_without_optional_claims_joins(emulator, stage, private_key, key_arn) -> None:
    token = self_signed(private_key, key_arn, stage, omit=("user_id", "attributes"))

    response = join(emulator.url, token)

    assert response.status_code == 200
    assert response.json()["userId"] is None


def test_subscribe_only_token_joins_with_subscribe_only(
    emulator, stage, private_key, key_arn
) -> None:
    token = self_signed(
        private_key,
        key_arn,
        stage,
        capabilities={"allow_publish": False, "allow_subscribe": True},
    )

    assert join(emulator.url, token).json()["capabilities"] == ["SUBSCRIBE"]


def test_connected_participant_joining_again_stays_connected(
    emulator, stage, private_key, key_arn
) -> None:
    token = self_signed(private_key, key_arn, stage)
    join(emulator.url, token)

    response = join(emulator.url, token)

    assert response.status_code == 200


def test_token_signed_by_another_key_has_invalid_signature(emulator, stage, key_arn) -> None:
    token = self_signed(new_p384_key(), key_arn, stage)

    body = _rejected(emulator, token)

    assert body["reason"] == "invalid_signature"


def test_tampered_claims_have_invalid_signature(emulator, stage, private_key, key_arn) -> None:
    header, _claims, signature = self_signed(private_key, key_arn, stage).split(".")
    forged = _b64(json.dumps(claims_for(stage, user_id="admin")).encode())

    body = _rejected(emulator, f"{header}.{forged}.{signature}")

    assert body["reason"] == "invalid_signature"


def test_der_encoded_signature_is_rejected(emulator, stage, private_key, key_arn) -> None:
    header = _b64(json.dumps({"alg": "ES384", "typ": "JWT", "kid": key_arn}).encode())
    claims = _b64(json.dumps(claims_for(stage)).encode())
    der = private_key.sign(f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA384()))

    body = _rejected(emulator, f"{header}.{claims}.{_b64(der)}")

    assert body["reason"] == "invalid_signature"


def test_kid_of_no_imported_key_is_unknown_key(emulator, stage, private_key) -> None:
    kid = "arn:aws:ivs:us-east-1:123456789012:public-key/NeverImported"

    body = _rejected(emulator, self_signed(private_key, kid, stage))

    assert body["reason"] == "unknown_key"


def test_kid_that_is_not_a_key_arn_is_unknown_key(emulator, stage, private_key) -> None:
    body = _rejected(emulator, self_signed(private_key, "my-key", stage))

    assert body["reason"] == "unknown_key"


def test_token_without_kid_is_unknown_key(emulator, stage, private_key) -> None:
    token = jwt.encode(claims_for(stage), private_key, algorithm="ES384")

    assert _rejected(emulator, token)["reason"] == "unknown_key"


def test_kid_of_a_deleted_key_is_key_deleted(
    emulator, ivs_client, stage, private_key, key_arn
) -> None:
    token = self_signed(private_key, key_arn, stage)
    ivs_client.delete_public_key(arn=key_arn)

    body = _rejected(emulator, token)

    assert body["reason"] == "key_deleted"


def test_key_of_another_region_is_unknown_key(emulator, make_client, private_key) -> None:
    west = make_client("us-west-2")
    west_key = west.import_public_key(publicKeyMaterial=public_pem(private_key))["publicKey"]["arn"]
    east_stage = make_client("us-east-1").create_stage()["stage"]

    body = _rejected(emulator, self_signed(private_key, west_key, east_stage))

    assert body["reason"] == "unknown_key"


def test_algorithm_other_than_es384_is_rejected(emulator, stage, key_arn) -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims_for(stage), p256, algorithm="ES256", headers={"kid": key_arn})

    body = _rejected(emulator, token)

    assert body["reason"] == "unsupported_algorithm"


def test_alg_none_is_rejected(emulator, stage, key_arn) -> None:
    header = _b64(json.dumps({"alg": "none", "kid": key_arn}).encode())
    claims = _b64(json.dumps(claims_for(stage)).encode())

    body = _rejected(emulator, f"{header}.{claims}.c2ln")

    assert body["reason"] == "unsupported_algorithm"


def test_expired_token_is_rejected(emulator, stage, private_key, key_arn) -> None:
    now = int(time.time())
    token = self_signed(private_key, key_arn, stage, iat=now - 7200, exp=now - 60)

    assert _rejected(emulator, token)["reason"] == "expired"


def test_lifetime_over_14_days_is_rejected(emulator, stage, private_key, key_arn) -> None:
    now = int(time.time())
    token = self_signed(private_key, key_arn, stage, iat=now, exp=now + FOURTEEN_DAYS + 1)

    assert _rejected(emulator, token)["reason"] == "lifetime_too_long"


def test_lifetime_of_exactly_14_days_joins(emulator, stage, private_key, key_arn) -> None:
    now = int(time.time())
    token = self_signed(private_key, key_arn, stage, iat=now, exp=now + FOURTEEN_DAYS)

    assert join(emulator.url, token).status_code == 200


def test_non_integer_exp_is_an_invalid_claim(emulator, stage, private_key, key_arn) -> None:
    token = self_signed(private_key, key_arn, stage, exp=str(int(time.time()) + 60))

    assert _rejected(emulator, token)["reason"] == "invalid_claim"


def test_wrong_topic_is_rejected(emulator, stage, private_key, key_arn) -> None:
    token = self_signed(private_key, key_arn, stage, topic="SomeOtherId1")

    assert _rejected(emulator, token)["reason"] == "topic_mismatch"


def test_wrong_events_url_is_rejected(emulator, stage, private_key, key_arn) -> None:
    token = self_signed(
        private_key, key_arn, stage, events_url="wss://us-east-1.events.live-video.net"
    )

    assert _rejected(emulator, token)["reason"] == "endpoint_mismatch"


def test_wrong_whip_url_is_rejected(emulator, stage, private_key, key_arn) -> None:
    token = self_signed(
        private_key, key_arn, stage, whip_url="https://000000000000.global-bm.whip.live-video.net"
    )

    assert _rejected(emulator, token)["reason"] == "endpoint_mismatch"


def test_numeric_version_is_rejected(emulator, stage, private_key, key_arn) -> None:
    token = self_signed(private_key, key_arn, stage, version=1.0)

    assert _rejected(emulator, token)["reason"] == "bad_version"


def test_other_version_string_is_rejected(emulator, stage, private_key, key_arn) -> None:
    token = self_signed(private_key, key_arn, stage, version="2.0")

    assert _rejected(emulator, token)["reason"] == "bad_version"


@pytest.mark.parametrize(
    "claim",
    ["exp", "iat", "jti", "resource", "topic", "events_url", "whip_url", "capabilities", "version"],
)
def test_missing_required_claim_is_rejected(emulator, stage, private_key, key_arn, claim) -> None:
    token = self_signed(private_key, key_arn, stage, omit=(claim,))

    body = _rejected(emulator, token)

    assert body["reason"] == "missing_claim"
    assert claim in body["message"]


@pytest.mark.parametrize("jti", ["", "x" * 65, "has space", "dot.ted", 42])
def test_invalid_jti_is_rejected(emulator, stage, private_key, key_arn, jti) -> None:
    token = self_signed(private_key, key_arn, stage, jti=jti)

    assert _rejected(emulator, token)["reason"] == "invalid_jti"


def test_jti_of_64_characters_with_dash_and_underscore_joins(
    emulator, stage, private_key, key_arn
) -> None:
    token = self_signed(private_key, key_arn, stage, jti="a-b_" + "c" * 60)

    assert join(emulator.url, token).status_code == 200


@pytest.mark.parametrize(
    "capabilities",
    [["PUBLISH"], {"allow_publish": "true", "allow_subscribe": True}, {"allow_publish": True}],
)
def test_capabilities_must_be_an_object_of_booleans(
    emulator, stage, private_key, key_arn, capabilities
) -> None:
    token = self_signed(private_key, key_arn, stage, capabilities=capabilities)

    assert _rejected(emulator, token)["reason"] == "invalid_capabilities"


def test_user_id_over_128_characters_is_rejected(emulator, stage, private_key, key_arn) -> None:
    token = self_signed(private_key, key_arn, stage, user_id="u" * 129)

    assert _rejected(emulator, token)["reason"] == "invalid_user_id"


def test_attributes_over_1kb_are_rejected(emulator, stage, private_key, key_arn) -> None:
    token = self_signed(private_key, key_arn, stage, attributes={"a": "x" * 1024})

    assert _rejected(emulator, token)["reason"] == "invalid_attributes"


def test_attributes_with_non_string_values_are_rejected(
    emulator, stage, private_key, key_arn
) -> None:
    token = self_signed(private_key, key_arn, stage, attributes={"age": 3})

    assert _rejected(emulator, token)["reason"] == "invalid_attributes"


def test_claims_with_raw_non_ascii_json_are_rejected(emulator, stage, private_key, key_arn) -> None:
    header = _b64(json.dumps({"alg": "ES384", "typ": "JWT", "kid": key_arn}).encode())
    claims = _b64(json.dumps(claims_for(stage, user_id="Zoë"), ensure_ascii=False).encode())
    signature = (
        jwt.api_jws.PyJWS()._algorithms["ES384"].sign(f"{header}.{claims}".encode(), private_key)
    )

    body = _rejected(emulator, f"{header}.{claims}.{_b64(signature)}")

    assert body["reason"] == "non_ascii_claims"


def test_escaped_non_ascii_user_id_joins(emulator, stage, private_key, key_arn) -> None:
    response = join(emulator.url, self_signed(private_key, key_arn, stage, user_id="Zoë"))

    assert response.json()["userId"] == "Zoë"


@pytest.mark.parametrize(
    "mangle",
    [lambda t: t + "=", lambda t: t + "\n", lambda t: " " + t, lambda t: t.replace(".", "", 1)],
)
def test_token_that_is_not_compact_base64url_is_malformed(
    emulator, stage, private_key, key_arn, mangle
) -> None:
    token = mangle(self_signed(private_key, key_arn, stage))

    assert _rejected(emulator, token)["reason"] == "malformed_token"


def test_token_of_a_deleted_stage_is_stage_not_found(
    emulator, ivs_client, stage, private_key, key_arn
) -> None:
    token = self_signed(private_key, key_arn, stage)
    ivs_client.delete_stage(arn=stage["arn"])

    response = join(emulator.url, token)

    assert response.status_code == 404
    assert response.json()["reason"] == "stage_not_found"


def test_disconnected_participant_token_may_not_join_again(
    emulator, ivs_client, stage, private_key, key_arn
) -> None:
    token = self_signed(private_key, key_arn, stage)
    join(emulator.url, token)
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="participant1")

    response = join(emulator.url, token)

    assert response.status_code == 403
    assert response.json()["reason"] == "participant_disconnected"


def test_new_token_with_a_disconnected_participant_id_may_not_join(
    emulator, ivs_client, stage, private_key, key_arn
) -> None:
    join(emulator.url, self_signed(private_key, key_arn, stage))
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId="participant1")

    fresh = self_signed(private_key, key_arn, stage, iat=int(time.time()) + 1)

    assert _rejected(emulator, fresh)["reason"] == "participant_disconnected"


def test_disconnected_create_participant_token_may_not_join_again(
    emulator, ivs_client, stage
) -> None:
    issued = ivs_client.create_participant_token(stageArn=stage["arn"])["participantToken"]
    join(emulator.url, issued["token"])
    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId=issued["participantId"])

    assert _rejected(emulator, issued["token"])["reason"] == "participant_disconnected"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"token": 5}', b"{}"])
def test_join_body_without_a_token_string_is_an_invalid_request(emulator, body) -> None:
    response = httpx.post(f"{emulator.url}/_emulator/join", content=body)

    assert response.status_code == 400
    assert response.json()["reason"] == "invalid_request"
