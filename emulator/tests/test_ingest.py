"""Ingest configurations: create, get, list, update, delete, and the RTMP publish simulation."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers import signed_request

ARN = re.compile(r"arn:aws:ivs:us-east-1:123456789012:ingest-configuration/[A-Za-z0-9]{12}")
UNKNOWN = "arn:aws:ivs:us-east-1:123456789012:ingest-configuration/AAAAAAAAAAAA"


def _publish(emulator_url: str, stream_key: str, action: str = "start", **extra) -> httpx.Response:
    body = {"streamKey": stream_key, "action": action, **extra}
    return httpx.post(f"{emulator_url}/_emulator/ingest", json=body)


@pytest.fixture
def config(ivs_client, stage) -> dict:
    return dict(
        ivs_client.create_ingest_configuration(
            name="cam-1",
            stageArn=stage["arn"],
            userId="sam",
            attributes={"role": "host"},
            ingestProtocol="RTMPS",
            tags={"team": "a"},
        )["ingestConfiguration"]
    )


def test_create_returns_the_configuration_in_the_model_shape(config, stage) -> None:
    assert ARN.fullmatch(config["arn"])
    assert config["name"] == "cam-1"
    assert config["ingestProtocol"] == "RTMPS"
    assert config["stageArn"] == stage["arn"]
    assert re.fullmatch(r"[A-Za-z0-9]{12}", config["participantId"])
    assert config["state"] == "INACTIVE"
    assert config["userId"] == "sam"
    assert config["attributes"] == {"role": "host"}
    assert config["tags"] == {"team": "a"}
    assert config["redundantIngest"] is False
    assert "redundantIngestCredentials" not in config


def test_stream_key_follows_the_model_pattern(config) -> None:
    config_id = config["arn"].rsplit("/", 1)[1]
    assert re.fullmatch(rf"rt_123456789012_us-east-1_{config_id}_.+", config["streamKey"])


def test_stage_arn_is_optional_and_empty_without_one(ivs_client) -> None:
    created = ivs_client.create_ingest_configuration(ingestProtocol="RTMPS")["ingestConfiguration"]

    assert created["stageArn"] == ""
    assert created["name"] == ""


def test_rtmp_without_insecure_ingest_is_rejected(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException, match="insecureIngest"):
        ivs_client.create_ingest_configuration(ingestProtocol="RTMP")


def test_rtmp_with_insecure_ingest_false_is_rejected(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        ivs_client.create_ingest_configuration(ingestProtocol="RTMP", insecureIngest=False)


def test_rtmp_with_insecure_ingest_is_created(ivs_client) -> None:
    created = ivs_client.create_ingest_configuration(ingestProtocol="RTMP", insecureIngest=True)

    assert created["ingestConfiguration"]["ingestProtocol"] == "RTMP"


def test_unknown_ingest_protocol_is_rejected(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException, match="enum"):
        loose_client.create_ingest_configuration(ingestProtocol="SRT")


def test_create_with_an_unknown_stage_is_a_validation_error(ivs_client) -> None:
    unknown = "arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"
    with pytest.raises(ivs_client.exceptions.ValidationException, match="not found"):
        ivs_client.create_ingest_configuration(ingestProtocol="RTMPS", stageArn=unknown)


def test_attributes_of_1024_bytes_are_accepted(ivs_client) -> None:
    created = ivs_client.create_ingest_configuration(
        ingestProtocol="RTMPS", attributes={"k": "v" * 1023}
    )

    assert len(created["ingestConfiguration"]["attributes"]["k"]) == 1023


def test_attributes_over_1024_bytes_are_rejected(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException, match="1024"):
        ivs_client.create_ingest_configuration(ingestProtocol="RTMPS", attributes={"k": "v" * 1024})


def test_user_id_of_128_characters_is_accepted(ivs_client) -> None:
    created = ivs_client.create_ingest_configuration(ingestProtocol="RTMPS", userId="u" * 128)

    assert created["ingestConfiguration"]["userId"] == "u" * 128


def test_user_id_of_129_characters_is_rejected(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException, match="userId"):
        loose_client.create_ingest_configuration(ingestProtocol="RTMPS", userId="u" * 129)


def test_name_with_a_space_is_rejected(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException, match="name"):
        loose_client.create_ingest_configuration(ingestProtocol="RTMPS", name="a b")


def test_redundant_ingest_returns_a_second_credential(ivs_client) -> None:
    created = ivs_client.create_ingest_configuration(ingestProtocol="RTMPS", redundantIngest=True)[
        "ingestConfiguration"
    ]

    (credential,) = created["redundantIngestCredentials"]
    assert credential["participantId"] != created["participantId"]
    assert credential["streamKey"] != created["streamKey"]


def test_get_returns_the_configuration(ivs_client, config) -> None:
    got = ivs_client.get_ingest_configuration(arn=config["arn"])["ingestConfiguration"]

    assert got == config


def test_get_unknown_configuration_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_ingest_configuration(arn=UNKNOWN)


def test_get_of_another_region_is_not_found(make_client, config) -> None:
    with pytest.raises(make_client().exceptions.ResourceNotFoundException):
        make_client("us-west-2").get_ingest_configuration(arn=config["arn"])


def test_list_returns_summaries_without_stream_keys(ivs_client, config) -> None:
    listed = ivs_client.list_ingest_configurations()["ingestConfigurations"]

    assert [c["arn"] for c in listed] == [config["arn"]]
    assert "streamKey" not in listed[0]
    assert listed[0]["state"] == "INACTIVE"


def test_list_filters_by_stage_arn(ivs_client, config) -> None:
    ivs_client.create_ingest_configuration(ingestProtocol="RTMPS")

    listed = ivs_client.list_ingest_configurations(filterByStageArn=config["stageArn"])

    assert [c["arn"] for c in listed["ingestConfigurations"]] == [config["arn"]]


def test_list_filters_by_state(emulator, ivs_client, config) -> None:
    other = ivs_client.create_ingest_configuration(ingestProtocol="RTMPS")["ingestConfiguration"]
    _publish(emulator.url, config["streamKey"])

    active = ivs_client.list_ingest_configurations(filterByState="ACTIVE")["ingestConfigurations"]
    inactive = ivs_client.list_ingest_configurations(filterByState="INACTIVE")

    assert [c["arn"] for c in active] == [config["arn"]]
    assert [c["arn"] for c in inactive["ingestConfigurations"]] == [other["arn"]]


def test_list_takes_one_filter_at_most(ivs_client, config) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException, match="one filter"):
        ivs_client.list_ingest_configurations(
            filterByStageArn=config["stageArn"], filterByState="ACTIVE"
        )


def test_list_pages(ivs_client) -> None:
    arns = [
        ivs_client.create_ingest_configuration(ingestProtocol="RTMPS")["ingestConfiguration"]["arn"]
        for _ in range(3)
    ]
    first = ivs_client.list_ingest_configurations(maxResults=2)
    second = ivs_client.list_ingest_configurations(maxResults=2, nextToken=first["nextToken"])

    assert [c["arn"] for c in first["ingestConfigurations"]] == arns[:2]
    assert [c["arn"] for c in second["ingestConfigurations"]] == arns[2:]
    assert "nextToken" not in second


def test_max_results_of_100_is_accepted_and_101_rejected(ivs_client, loose_client) -> None:
    ivs_client.list_ingest_configurations(maxResults=100)

    with pytest.raises(loose_client.exceptions.ValidationException, match="maxResults"):
        loose_client.list_ingest_configurations(maxResults=101)


def test_update_changes_the_stage(ivs_client, config) -> None:
    other = ivs_client.create_stage(name="other")["stage"]

    updated = ivs_client.update_ingest_configuration(arn=config["arn"], stageArn=other["arn"])

    assert updated["ingestConfiguration"]["stageArn"] == other["arn"]
    got = ivs_client.get_ingest_configuration(arn=config["arn"])["ingestConfiguration"]
    assert got["stageArn"] == other["arn"]


def test_update_with_an_empty_stage_arn_dissociates_it(ivs_client, config) -> None:
    updated = ivs_client.update_ingest_configuration(arn=config["arn"], stageArn="")

    assert updated["ingestConfiguration"]["stageArn"] == ""


def test_update_to_an_unknown_stage_is_not_found(ivs_client, config) -> None:
    unknown = "arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA"
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.update_ingest_configuration(arn=config["arn"], stageArn=unknown)


def test_update_of_an_active_configuration_is_a_conflict(emulator, ivs_client, config) -> None:
    _publish(emulator.url, config["streamKey"])

    with pytest.raises(ivs_client.exceptions.ConflictException):
        ivs_client.update_ingest_configuration(arn=config["arn"], stageArn="")


def test_update_of_an_unknown_configuration_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.update_ingest_configuration(arn=UNKNOWN, stageArn="")


def test_delete_removes_the_configuration(ivs_client, config) -> None:
    ivs_client.delete_ingest_configuration(arn=config["arn"])

    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_ingest_configuration(arn=config["arn"])


def test_delete_of_an_unknown_configuration_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.delete_ingest_configuration(arn=UNKNOWN)


def test_delete_of_a_publishing_configuration_needs_force(emulator, ivs_client, config) -> None:
    _publish(emulator.url, config["streamKey"])

    with pytest.raises(ivs_client.exceptions.ConflictException, match="force"):
        ivs_client.delete_ingest_configuration(arn=config["arn"])
    with pytest.raises(ivs_client.exceptions.ConflictException):
        ivs_client.delete_ingest_configuration(arn=config["arn"], force=False)


def test_forced_delete_disconnects_the_publisher(emulator, ivs_client, config, stage) -> None:
    _publish(emulator.url, config["streamKey"])
    session_id = ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"]

    ivs_client.delete_ingest_configuration(arn=config["arn"], force=True)

    participant = ivs_client.get_participant(
        stageArn=stage["arn"], sessionId=session_id, participantId=config["participantId"]
    )["participant"]
    assert participant["state"] == "DISCONNECTED"


def test_tags_of_an_ingest_configuration_are_managed_by_arn(ivs_client, config) -> None:
    ivs_client.tag_resource(resourceArn=config["arn"], tags={"env": "dev"})
    ivs_client.untag_resource(resourceArn=config["arn"], tagKeys=["team"])

    assert ivs_client.list_tags_for_resource(resourceArn=config["arn"])["tags"] == {"env": "dev"}


def test_raw_create_answers_200_with_the_model_members(emulator) -> None:
    response = signed_request(
        emulator.url, "POST", "/CreateIngestConfiguration", {"ingestProtocol": "RTMPS"}
    )

    assert response.status_code == 200
    assert set(response.json()["ingestConfiguration"]) >= {
        "arn",
        "ingestProtocol",
        "streamKey",
        "stageArn",
        "participantId",
        "state",
    }


# ---------------------------------------------------------------- publishing


def test_publishing_makes_the_configuration_active(emulator, ivs_client, config) -> None:
    response = _publish(emulator.url, config["streamKey"])

    assert response.status_code == 200
    assert response.json()["participantId"] == config["participantId"]
    got = ivs_client.get_ingest_configuration(arn=config["arn"])["ingestConfiguration"]
    assert got["state"] == "ACTIVE"


def test_publisher_is_a_participant_of_the_stage(emulator, ivs_client, config, stage) -> None:
    _publish(emulator.url, config["streamKey"])
    session_id = ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"]

    participant = ivs_client.get_participant(
        stageArn=stage["arn"], sessionId=session_id, participantId=config["participantId"]
    )["participant"]

    assert participant["state"] == "CONNECTED"
    assert participant["userId"] == "sam"
    assert participant["attributes"] == {"role": "host"}
    assert participant["published"] is True
    assert participant["protocol"] == "RTMPS"
    assert participant["ingestConfigurationArn"] == config["arn"]


def test_stopping_the_publish_makes_it_inactive(emulator, ivs_client, config) -> None:
    _publish(emulator.url, config["streamKey"])

    response = _publish(emulator.url, config["streamKey"], "stop")

    assert response.status_code == 200
    got = ivs_client.get_ingest_configuration(arn=config["arn"])["ingestConfiguration"]
    assert got["state"] == "INACTIVE"
    assert got["stageArn"] == config["stageArn"]


def test_disconnecting_the_publisher_clears_the_stage_arn(
    emulator, ivs_client, config, stage
) -> None:
    _publish(emulator.url, config["streamKey"])

    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId=config["participantId"])

    got = ivs_client.get_ingest_configuration(arn=config["arn"])["ingestConfiguration"]
    assert got["state"] == "INACTIVE"
    assert got["stageArn"] == ""


def test_a_key_without_a_stage_cannot_publish(emulator, ivs_client) -> None:
    created = ivs_client.create_ingest_configuration(ingestProtocol="RTMPS")["ingestConfiguration"]

    response = _publish(emulator.url, created["streamKey"])

    assert response.status_code == 409
    assert response.json()["reason"] == "stage_not_associated"


def test_an_unknown_stream_key_cannot_publish(emulator) -> None:
    response = _publish(emulator.url, "rt_123456789012_us-east-1_AAAAAAAAAAAA_secret")

    assert response.status_code == 404
    assert response.json()["reason"] == "invalid_stream_key"


def test_a_key_already_publishing_is_refused(emulator, config) -> None:
    _publish(emulator.url, config["streamKey"])

    response = _publish(emulator.url, config["streamKey"])

    assert response.status_code == 409
    assert response.json()["reason"] == "reuse_of_stream_key"


def test_rtmp_to_an_rtmps_configuration_is_refused(emulator, config) -> None:
    response = _publish(emulator.url, config["streamKey"], protocol="RTMP")

    assert response.status_code == 400
    assert response.json()["reason"] == "invalid_protocol"


def test_stopping_a_key_that_does_not_publish_is_refused(emulator, config) -> None:
    response = _publish(emulator.url, config["streamKey"], "stop")

    assert response.status_code == 409
    assert response.json()["reason"] == "not_publishing"


def test_a_malformed_ingest_request_is_invalid(emulator) -> None:
    response = httpx.post(f"{emulator.url}/_emulator/ingest", json={"streamKey": "x"})

    assert response.status_code == 400
    assert response.json()["reason"] == "invalid_request"


def test_list_participants_filters_publishers(emulator, ivs_client, config, stage) -> None:
    _publish(emulator.url, config["streamKey"])
    session_id = ivs_client.get_stage(arn=stage["arn"])["stage"]["activeSessionId"]

    published = ivs_client.list_participants(
        stageArn=stage["arn"], sessionId=session_id, filterByPublished=True
    )["participants"]

    assert [p["participantId"] for p in published] == [config["participantId"]]
