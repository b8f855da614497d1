"""RevokeConnectionToken: the token ID never connects again; whoever uses it is disconnected."""

from __future__ import annotations

import pytest

from tests.helpers import join, self_signed


def test_revoke_answers_200_with_an_empty_body(ivs_client) -> None:
    response = ivs_client.revoke_connection_token(tokenId="participant1")

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_revoked_token_cannot_join(emulator, ivs_client, stage, private_key, key_arn) -> None:
    ivs_client.revoke_connection_token(tokenId="participant1")

    response = join(emulator.url, self_signed(private_key, key_arn, stage))

    assert response.status_code == 403
    assert response.json()["reason"] == "token_revoked"


def test_revoking_disconnects_the_participant_using_it(
    emulator, ivs_client, stage, private_key, key_arn
) -> None:
    join(emulator.url, self_signed(private_key, key_arn, stage))
    session_id = ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"]

    ivs_client.revoke_connection_token(tokenId="participant1")

    participant = ivs_client.get_participant(
        stageArn=stage["arn"], sessionId=session_id, participantId="participant1"
    )["participant"]
    assert participant["state"] == "DISCONNECTED"


def test_an_issued_token_is_revoked_by_its_participant_id(emulator, ivs_client, stage) -> None:
    issued = ivs_client.create_participant_token(stageArn=stage["arn"])["participantToken"]

    ivs_client.revoke_connection_token(tokenId=issued["participantId"])

    assert join(emulator.url, issued["token"]).json()["reason"] == "token_revoked"


def test_other_tokens_still_join(emulator, ivs_client, stage, private_key, key_arn) -> None:
    ivs_client.revoke_connection_token(tokenId="participant1")

    response = join(emulator.url, self_signed(private_key, key_arn, stage, jti="participant2"))

    assert response.status_code == 200


def test_revocation_holds_in_its_region_only(
    emulator, make_client, stage, private_key, key_arn
) -> None:
    make_client("us-west-2").revoke_connection_token(tokenId="participant1")

    response = join(emulator.url, self_signed(private_key, key_arn, stage))

    assert response.status_code == 200


def test_token_id_of_64_characters_is_accepted(ivs_client) -> None:
    ivs_client.revoke_connection_token(tokenId="t" * 64)


@pytest.mark.parametrize("token_id", ["", "t" * 65, "no spaces"])
def test_token_id_outside_the_model_is_rejected(loose_client, token_id) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException, match="tokenId"):
        loose_client.revoke_connection_token(tokenId=token_id)
