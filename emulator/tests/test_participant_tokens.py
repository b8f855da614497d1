"""CreateParticipantToken: defaults, limits, the token's claims, and that it joins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.helpers import join


def test_defaults_are_720_minutes_and_both_capabilities(ivs_client, stage) -> None:
    before = datetime.now(UTC)

    token = ivs_client.create_participant_token(stageArn=stage["arn"])["participantToken"]

    assert token["duration"] == 720
    assert token["capabilities"] == ["PUBLISH", "SUBSCRIBE"]
    expected = before + timedelta(minutes=720)
    assert abs((token["expirationTime"] - expected).total_seconds()) < 5


def test_returns_what_was_asked(ivs_client, stage) -> None:
    token = ivs_client.create_participant_token(
        stageArn=stage["arn"],
        duration=20160,
        userId="sam",
        attributes={"displayName": "Sam"},
        capabilities=["SUBSCRIBE"],
    )["participantToken"]

    assert token["duration"] == 20160
    assert token["userId"] == "sam"
    assert token["attributes"] == {"displayName": "Sam"}
    assert token["capabilities"] == ["SUBSCRIBE"]
    assert token["participantId"]
    assert token["token"]


def test_each_token_gets_its_own_participant_id(ivs_client, stage) -> None:
    ids = {
        ivs_client.create_participant_token(stageArn=stage["arn"])["participantToken"][
            "participantId"
        ]
        for _ in range(5)
    }

    assert len(ids) == 5


def test_token_carries_the_ivs_claims(ivs_client, stage) -> None:
    issued = ivs_client.create_participant_token(stageArn=stage["arn"], userId="sam")[
        "participantToken"
    ]

    claims = jwt.decode(issued["token"], options={"verify_signature": False})

    assert jwt.get_unverified_header(issued["token"])["alg"] == "ES384"
    assert claims["jti"] == issued["participantId"]
    assert claims["resource"] == stage["arn"]
    assert claims["topic"] == stage["arn"].rsplit("/", 1)[1]
    assert claims["events_url"] == stage["endpoints"]["events"]
    assert claims["whip_url"] == stage["endpoints"]["whip"]
    assert claims["version"] == "1.0"
    assert claims["user_id"] == "sam"
    assert claims["capabilities"] == {"allow_publish": True, "allow_subscribe": True}
    assert claims["exp"] - claims["iat"] == 720 * 60


def test_attributes_over_1kb_are_rejected(ivs_client, stage) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException) as raised:
        ivs_client.create_participant_token(stageArn=stage["arn"], attributes={"k": "é" * 512})

    assert "1024" in raised.value.response["Error"]["Message"]


def test_attributes_of_exactly_1kb_are_accepted(ivs_client, stage) -> None:
    token = ivs_client.create_participant_token(
        stageArn=stage["arn"], attributes={"k": "v" * 1023}
    )["participantToken"]

    assert token["attributes"] == {"k": "v" * 1023}


def test_user_id_over_128_characters_is_rejected(loose_client, stage) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException):
        loose_client.create_participant_token(stageArn=stage["arn"], userId="u" * 129)


def test_unknown_stage_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.create_participant_token(
            stageArn="arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage1"
        )


def test_created_token_joins_the_stage(emulator, ivs_client, stage) -> None:
    issued = ivs_client.create_participant_token(
        stageArn=stage["arn"], userId="sam", capabilities=["SUBSCRIBE"]
    )["participantToken"]

    response = join(emulator.url, issued["token"])

    assert response.status_code == 200
    assert response.json() == {
        "participantId": issued["participantId"],
        "userId": "sam",
        "stageArn": stage["arn"],
        "capabilities": ["SUBSCRIBE"],
    }


def test_create_stage_tokens_join_their_stage(emulator, ivs_client) -> None:
    created = ivs_client.create_stage(participantTokenConfigurations=[{"userId": "host"}])
    token = created["participantTokens"][0]

    response = join(emulator.url, token["token"])

    assert response.status_code == 200
    assert response.json()["participantId"] == token["participantId"]
