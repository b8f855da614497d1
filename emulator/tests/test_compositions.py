"""Server-side compositions: start, get, list, stop, their references and life cycle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.helpers import join

ACCOUNT = "123456789012"
CHANNEL = f"arn:aws:ivs:us-east-1:{ACCOUNT}:channel/abcdEFGHijkl"
OTHER_CHANNEL = f"arn:aws:ivs:us-east-1:{ACCOUNT}:channel/mnopQRSTuvwx"


@pytest.fixture
def encoder_arn(ivs_client) -> str:
    return ivs_client.create_encoder_configuration(name="enc")["encoderConfiguration"]["arn"]


@pytest.fixture
def storage_arn(ivs_client) -> str:
    return ivs_client.create_storage_configuration(s3={"bucketName": "recordings"})[
        "storageConfiguration"
    ]["arn"]


def _s3(storage_arn: str, encoder_arn: str) -> dict:
    return {
        "s3": {"storageConfigurationArn": storage_arn, "encoderConfigurationArns": [encoder_arn]}
    }


def _channel(channel_arn: str = CHANNEL, **extra: str) -> dict:
    return {"channel": {"channelArn": channel_arn, **extra}}


def _start(ivs_client, stage, *destinations, **params) -> dict:
    return ivs_client.start_composition(
        stageArn=stage["arn"], destinations=list(destinations or [_channel()]), **params
    )["composition"]


# ---------------------------------------------------------------- StartComposition


def test_start_composition_answers_starting_with_its_destinations(
    ivs_client, stage, encoder_arn, storage_arn
) -> None:
    composition = _start(
        ivs_client,
        stage,
        _channel(encoderConfigurationArn=encoder_arn),
        _s3(storage_arn, encoder_arn),
    )

    assert composition["arn"].startswith(f"arn:aws:ivs:us-east-1:{ACCOUNT}:composition/")
    assert composition["stageArn"] == stage["arn"]
    assert composition["state"] == "STARTING"
    assert [d["state"] for d in composition["destinations"]] == ["STARTING", "STARTING"]
    assert isinstance(composition["startTime"], datetime)
    assert "endTime" not in composition
    assert composition["tags"] == {}


def test_start_composition_defaults_to_the_grid_layout(ivs_client, stage) -> None:
    composition = _start(ivs_client, stage)

    assert composition["layout"] == {
        "grid": {
            "featuredParticipantAttribute": "",
            "omitStoppedVideo": False,
            "videoAspectRatio": "VIDEO",
            "gridGap": 2,
        }
    }


def test_pip_layout_is_filled_with_its_defaults(ivs_client, stage) -> None:
    composition = _start(ivs_client, stage, layout={"pip": {"featuredParticipantAttribute": "f"}})

    assert composition["layout"] == {
        "pip": {
            "featuredParticipantAttribute": "f",
            "omitStoppedVideo": False,
            "videoFillMode": "COVER",
            "gridGap": 0,
            "pipParticipantAttribute": "",
            "pipBehavior": "STATIC",
            "pipOffset": 0,
            "pipPosition": "BOTTOM_RIGHT",
        }
    }


def test_grid_and_pip_together_are_refused(ivs_client, stage) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        _start(ivs_client, stage, layout={"grid": {}, "pip": {}})


def test_s3_destination_gets_hls_defaults_and_a_recording_prefix(
    ivs_client, stage, encoder_arn, storage_arn
) -> None:
    composition = _start(ivs_client, stage, _s3(storage_arn, encoder_arn))

    destination = composition["destinations"][0]
    assert destination["configuration"]["name"] == ""
    assert destination["configuration"]["s3"]["recordingConfiguration"] == {
        "format": "HLS",
        "hlsConfiguration": {"targetSegmentDurationSeconds": 2},
    }
    prefix = destination["detail"]["s3"]["recordingPrefix"]
    assert prefix.endswith(f"/{destination['id']}/composite")


def test_start_composition_on_unknown_stage_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.start_composition(
            stageArn=f"arn:aws:ivs:us-east-1:{ACCOUNT}:stage/nope", destinations=[_channel()]
        )


def test_start_composition_with_unknown_storage_configuration_is_not_found(
    ivs_client, stage, encoder_arn
) -> None:
    unknown = f"arn:aws:ivs:us-east-1:{ACCOUNT}:storage-configuration/nope"

    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        _start(ivs_client, stage, _s3(unknown, encoder_arn))

    assert ivs_client.list_compositions()["compositions"] == []


def test_start_composition_with_unknown_encoder_configuration_is_not_found(
    ivs_client, stage
) -> None:
    unknown = f"arn:aws:ivs:us-east-1:{ACCOUNT}:encoder-configuration/nope"

    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        _start(ivs_client, stage, _channel(encoderConfigurationArn=unknown))


def test_channel_of_another_region_is_refused(ivs_client, stage) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        _start(ivs_client, stage, _channel(f"arn:aws:ivs:us-west-2:{ACCOUNT}:channel/abc"))


def test_destination_without_channel_or_s3_is_refused(ivs_client, stage) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        _start(ivs_client, stage, {"name": "nothing"})


def test_destination_with_both_channel_and_s3_is_refused(
    ivs_client, stage, encoder_arn, storage_arn
) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        _start(ivs_client, stage, {**_channel(), **_s3(storage_arn, encoder_arn)})


def test_two_channel_destinations_are_refused(ivs_client, stage) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        _start(ivs_client, stage, _channel(), _channel(OTHER_CHANNEL))


def test_three_destinations_are_refused_by_the_model(loose_client, stage) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException) as raised:
        _start(loose_client, stage, _channel(), _channel(), _channel())

    assert "destinations" in raised.value.response["Error"]["Message"]


def test_channel_already_broadcasting_a_composition_is_a_conflict(ivs_client, stage) -> None:
    _start(ivs_client, stage)

    with pytest.raises(ivs_client.exceptions.ConflictException):
        _start(ivs_client, stage)


def test_channel_of_a_stopped_composition_can_be_used_again(ivs_client, stage) -> None:
    first = _start(ivs_client, stage)
    ivs_client.stop_composition(arn=first["arn"])

    assert _start(ivs_client, stage)["state"] == "STARTING"


def test_fifth_running_composition_is_accepted(ivs_client, stage) -> None:
    for index in range(5):
        _start(ivs_client, stage, _channel(f"arn:aws:ivs:us-east-1:{ACCOUNT}:channel/c{index}"))

    assert len(ivs_client.list_compositions()["compositions"]) == 5


def test_sixth_running_composition_exceeds_the_quota(ivs_client, stage) -> None:
    for index in range(5):
        _start(ivs_client, stage, _channel(f"arn:aws:ivs:us-east-1:{ACCOUNT}:channel/c{index}"))

    with pytest.raises(ivs_client.exceptions.ServiceQuotaExceededException):
        _start(ivs_client, stage, _channel(f"arn:aws:ivs:us-east-1:{ACCOUNT}:channel/c5"))


def test_stopped_compositions_do_not_count_against_the_quota(ivs_client, stage) -> None:
    for index in range(5):
        started = _start(
            ivs_client, stage, _channel(f"arn:aws:ivs:us-east-1:{ACCOUNT}:channel/c{index}")
        )
    ivs_client.stop_composition(arn=started["arn"])

    assert _start(ivs_client, stage, _channel(OTHER_CHANNEL))["state"] == "STARTING"


def test_same_idempotency_token_returns_the_same_composition(ivs_client, stage) -> None:
    first = _start(ivs_client, stage, idempotencyToken="once")

    second = _start(ivs_client, stage, idempotencyToken="once")

    assert second["arn"] == first["arn"]
    assert len(ivs_client.list_compositions()["compositions"]) == 1


def test_start_composition_keeps_its_tags(ivs_client, stage) -> None:
    composition = _start(ivs_client, stage, tags={"show": "x"})

    assert ivs_client.list_tags_for_resource(resourceArn=composition["arn"])["tags"] == {
        "show": "x"
    }


# ---------------------------------------------------------------- GetComposition, life cycle


def test_started_composition_is_active(ivs_client, stage) -> None:
    started = _start(ivs_client, stage)

    fetched = ivs_client.get_composition(arn=started["arn"])["composition"]

    assert fetched["state"] == "ACTIVE"
    assert fetched["destinations"][0]["state"] == "ACTIVE"
    assert fetched["destinations"][0]["startTime"] == fetched["startTime"]
    assert fetched["layout"] == started["layout"]


def test_get_unknown_composition_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_composition(arn=f"arn:aws:ivs:us-east-1:{ACCOUNT}:composition/nope")


def test_stop_composition_makes_it_stopped_with_an_end_time(ivs_client, stage) -> None:
    started = _start(ivs_client, stage)

    ivs_client.stop_composition(arn=started["arn"])

    stopped = ivs_client.get_composition(arn=started["arn"])["composition"]
    assert stopped["state"] == "STOPPED"
    assert stopped["destinations"][0]["state"] == "STOPPED"
    assert stopped["endTime"] >= stopped["startTime"]
    assert stopped["destinations"][0]["endTime"] == stopped["endTime"]


def test_stopping_a_stopped_composition_changes_nothing(ivs_client, stage) -> None:
    started = _start(ivs_client, stage)
    ivs_client.stop_composition(arn=started["arn"])
    end = ivs_client.get_composition(arn=started["arn"])["composition"]["endTime"]

    ivs_client.stop_composition(arn=started["arn"])

    assert ivs_client.get_composition(arn=started["arn"])["composition"]["endTime"] == end


def test_stop_unknown_composition_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.stop_composition(arn=f"arn:aws:ivs:us-east-1:{ACCOUNT}:composition/nope")


def test_composition_stays_active_before_the_idle_timeout_when_the_stage_empties(
    emulator, ivs_client, stage
) -> None:
    token = ivs_client.create_participant_token(stageArn=stage["arn"])["participantToken"]
    join(emulator.url, token["token"])
    started = _start(ivs_client, stage)

    ivs_client.disconnect_participant(stageArn=stage["arn"], participantId=token["participantId"])

    assert ivs_client.get_composition(arn=started["arn"])["composition"]["state"] == "ACTIVE"


def test_deleting_the_stage_stops_its_compositions(ivs_client, stage) -> None:
    started = _start(ivs_client, stage)

    ivs_client.delete_stage(arn=stage["arn"])

    stopped = ivs_client.get_composition(arn=started["arn"])["composition"]
    assert stopped["state"] == "STOPPED"
    assert stopped["endTime"] <= datetime.now(UTC)


# ---------------------------------------------------------------- ListCompositions


def test_list_compositions_summarizes_in_creation_order(ivs_client, stage) -> None:
    first = _start(ivs_client, stage)
    second = _start(ivs_client, stage, _channel(OTHER_CHANNEL))

    listed = ivs_client.list_compositions()["compositions"]

    assert [c["arn"] for c in listed] == [first["arn"], second["arn"]]
    assert set(listed[0]) == {"arn", "stageArn", "destinations", "state", "tags", "startTime"}
    assert set(listed[0]["destinations"][0]) == {"id", "state", "startTime"}


def test_list_compositions_filters_by_stage(ivs_client, stage) -> None:
    other = ivs_client.create_stage(name="other")["stage"]
    _start(ivs_client, stage)
    mine = _start(ivs_client, other, _channel(OTHER_CHANNEL))

    listed = ivs_client.list_compositions(filterByStageArn=other["arn"])["compositions"]

    assert [c["arn"] for c in listed] == [mine["arn"]]


def test_list_compositions_filters_by_encoder_configuration(
    ivs_client, stage, encoder_arn, storage_arn
) -> None:
    _start(ivs_client, stage)
    with_encoder = _start(ivs_client, stage, _s3(storage_arn, encoder_arn))

    listed = ivs_client.list_compositions(filterByEncoderConfigurationArn=encoder_arn)[
        "compositions"
    ]

    assert [c["arn"] for c in listed] == [with_encoder["arn"]]


def test_list_compositions_pages_with_next_token(ivs_client, stage) -> None:
    arns = [
        _start(ivs_client, stage, _channel(f"arn:aws:ivs:us-east-1:{ACCOUNT}:channel/c{i}"))["arn"]
        for i in range(3)
    ]

    first = ivs_client.list_compositions(maxResults=2)
    second = ivs_client.list_compositions(maxResults=2, nextToken=first["nextToken"])

    assert [c["arn"] for c in first["compositions"] + second["compositions"]] == arns


# ---------------------------------------------------------------- configurations in use


def test_encoder_configuration_of_a_running_composition_cannot_be_deleted(
    ivs_client, stage, encoder_arn
) -> None:
    _start(ivs_client, stage, _channel(encoderConfigurationArn=encoder_arn))

    with pytest.raises(ivs_client.exceptions.ConflictException):
        ivs_client.delete_encoder_configuration(arn=encoder_arn)


def test_encoder_configuration_of_a_stopped_composition_can_be_deleted(
    ivs_client, stage, encoder_arn
) -> None:
    started = _start(ivs_client, stage, _channel(encoderConfigurationArn=encoder_arn))
    ivs_client.stop_composition(arn=started["arn"])

    ivs_client.delete_encoder_configuration(arn=encoder_arn)

    assert ivs_client.list_encoder_configurations()["encoderConfigurations"] == []


def test_storage_configuration_of_a_running_composition_cannot_be_deleted(
    ivs_client, stage, encoder_arn, storage_arn
) -> None:
    _start(ivs_client, stage, _s3(storage_arn, encoder_arn))

    with pytest.raises(ivs_client.exceptions.ConflictException):
        ivs_client.delete_storage_configuration(arn=storage_arn)


def test_storage_configuration_of_a_stopped_composition_can_be_deleted(
    ivs_client, stage, encoder_arn, storage_arn
) -> None:
    started = _start(ivs_client, stage, _s3(storage_arn, encoder_arn))
    ivs_client.stop_composition(arn=started["arn"])

    ivs_client.delete_storage_configuration(arn=storage_arn)

    assert ivs_client.list_storage_configurations()["storageConfigurations"] == []
