"""Server-side validation from botocore's model, reached with client-side validation off."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.helpers import signed_request


def _validation_message(call, **params) -> str:
    with pytest.raises(ClientError) as raised:
        call(**params)
    response = raised.value.response
    assert response["Error"]["Code"] == "ValidationException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(response["Error"]["Message"])


def test_missing_required_member_is_rejected(loose_client) -> None:
    message = _validation_message(loose_client.get_stage)

    assert "'arn'" in message
    assert "must not be null" in message


def test_string_longer_than_max_is_rejected(loose_client) -> None:
    message = _validation_message(loose_client.create_stage, name="a" * 129)

    assert "length less than or equal to 128" in message


def test_string_not_matching_pattern_is_rejected(loose_client) -> None:
    message = _validation_message(loose_client.create_stage, name="has space")

    assert "regular expression pattern" in message


def test_arn_not_matching_pattern_is_rejected(loose_client) -> None:
    message = _validation_message(loose_client.get_stage, arn="arn:aws:ivs:us-east-1:1:channel/x")

    assert "'arn'" in message


def test_integer_below_minimum_is_rejected(loose_client, stage) -> None:
    message = _validation_message(
        loose_client.create_participant_token, stageArn=stage["arn"], duration=0
    )

    assert "greater than or equal to 1" in message


def test_integer_above_maximum_is_rejected(loose_client, stage) -> None:
    message = _validation_message(
        loose_client.create_participant_token, stageArn=stage["arn"], duration=20161
    )

    assert "less than or equal to 20160" in message


def test_value_of_wrong_type_is_rejected(emulator, stage) -> None:
    body = {"stageArn": stage["arn"], "duration": "60"}
    response = signed_request(emulator.url, "POST", "/CreateParticipantToken", body)

    assert response.status_code == 400
    assert "must be an integer" in response.json()["message"]


def test_boolean_is_not_an_integer(emulator, stage) -> None:
    body = {"stageArn": stage["arn"], "duration": True}
    response = signed_request(emulator.url, "POST", "/CreateParticipantToken", body)

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"


def test_value_outside_enum_is_rejected(loose_client, stage) -> None:
    message = _validation_message(
        loose_client.create_participant_token, stageArn=stage["arn"], capabilities=["FLY"]
    )

    assert "enum value set: [PUBLISH, SUBSCRIBE]" in message


def test_list_longer_than_max_is_rejected(loose_client, stage) -> None:
    message = _validation_message(
        loose_client.create_participant_token,
        stageArn=stage["arn"],
        capabilities=["PUBLISH", "SUBSCRIBE", "PUBLISH"],
    )

    assert "'capabilities'" in message
    assert "length less than or equal to 2" in message


def test_map_larger_than_max_is_rejected(loose_client) -> None:
    message = _validation_message(loose_client.create_stage, tags={f"k{i}": "v" for i in range(51)})

    assert "'tags'" in message


def test_map_key_shorter_than_min_is_rejected(loose_client) -> None:
    message = _validation_message(loose_client.create_stage, tags={"": "v"})

    assert "'tags.key'" in message


def test_nested_structure_member_is_checked(loose_client) -> None:
    message = _validation_message(
        loose_client.create_stage, participantTokenConfigurations=[{"duration": 0}]
    )

    assert "participantTokenConfigurations[0].duration" in message


def test_nested_required_member_is_checked(loose_client) -> None:
    message = _validation_message(
        loose_client.create_stage, autoParticipantRecordingConfiguration={"mediaTypes": []}
    )

    assert "autoParticipantRecordingConfiguration.storageConfigurationArn" in message


def test_every_violation_is_listed(loose_client, stage) -> None:
    message = _validation_message(
        loose_client.create_participant_token,
        stageArn=stage["arn"],
        duration=0,
        userId="u" * 129,
        capabilities=["FLY"],
    )

    assert message.startswith("3 validation errors detected")


def test_validation_error_carries_error_type_header_and_exception_message(emulator) -> None:
    response = signed_request(emulator.url, "POST", "/GetStage", {})

    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    body = response.json()
    assert body["message"].startswith("1 validation error detected")
    assert body["exceptionMessage"] == body["message"]


def test_validation_error_populates_modeled_exception(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException) as raised:
        loose_client.get_stage(arn="nope")

    assert raised.value.response["exceptionMessage"] == raised.value.response["Error"]["Message"]


def test_max_results_above_model_maximum_is_rejected(loose_client) -> None:
    message = _validation_message(loose_client.list_stages, maxResults=101)

    assert "'maxResults'" in message


def test_unknown_members_are_ignored_as_aws_does(emulator) -> None:
    response = signed_request(emulator.url, "POST", "/CreateStage", {"name": "x", "bogus": 1})

    assert response.status_code == 200
    assert response.json()["stage"]["name"] == "x"
