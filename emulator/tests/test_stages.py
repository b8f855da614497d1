"""Stages: CreateStage, GetStage, ListStages, UpdateStage, DeleteStage."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError

STAGE_ARN = re.compile(r"arn:aws:ivs:us-east-1:123456789012:stage/[A-Za-z0-9]{12}")


def test_create_stage_returns_a_stage_arn(ivs_client) -> None:
    stage = ivs_client.create_stage(name="demo")["stage"]

    assert STAGE_ARN.fullmatch(stage["arn"])
    assert stage["name"] == "demo"


def test_create_stage_returns_endpoints_shaped_like_the_real_ones(ivs_client) -> None:
    endpoints = ivs_client.create_stage()["stage"]["endpoints"]

    assert endpoints["events"] == "wss://global.events.live-video.net"
    host = re.fullmatch(
        r"https://([a-z0-9]{12})\.global-bm\.whip\.live-video\.net", endpoints["whip"]
    )
    assert host is not None
    assert endpoints["rtmp"] == f"rtmp://{host.group(1)}.global-contribute.live-video.net/app/"
    assert (
        endpoints["rtmps"] == f"rtmps://{host.group(1)}.global-contribute.live-video.net:443/app/"
    )


def test_each_stage_gets_its_own_endpoints(ivs_client) -> None:
    first = ivs_client.create_stage()["stage"]["endpoints"]
    second = ivs_client.create_stage()["stage"]["endpoints"]

    assert first["whip"] != second["whip"]


def test_create_stage_returns_tokens_for_its_token_configurations(ivs_client) -> None:
    response = ivs_client.create_stage(
        participantTokenConfigurations=[
            {"userId": "alice", "capabilities": ["PUBLISH"], "duration": 30},
            {"userId": "bob"},
        ]
    )

    tokens = response["participantTokens"]
    assert [t["userId"] for t in tokens] == ["alice", "bob"]
    assert tokens[0]["capabilities"] == ["PUBLISH"]
    assert tokens[0]["duration"] == 30
    assert tokens[1]["capabilities"] == ["PUBLISH", "SUBSCRIBE"]
    assert tokens[0]["participantId"] != tokens[1]["participantId"]
    assert all(t["token"] for t in tokens)


def test_create_stage_rejects_token_attributes_over_1kb_and_creates_nothing(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException):
        loose_client.create_stage(
            participantTokenConfigurations=[{"attributes": {"a": "x" * 1024}}]
        )

    assert loose_client.list_stages()["stages"] == []


def test_create_stage_stores_recording_configuration(ivs_client) -> None:
    storage = ivs_client.create_storage_configuration(s3={"bucketName": "recordings"})
    configuration = {
        "storageConfigurationArn": storage["storageConfiguration"]["arn"],
        "mediaTypes": ["AUDIO_ONLY"],
    }
    arn = ivs_client.create_stage(autoParticipantRecordingConfiguration=configuration)["stage"][
        "arn"
    ]

    stored = ivs_client.get_stage(arn=arn)["stage"]["autoParticipantRecordingConfiguration"]
    assert stored["storageConfigurationArn"] == configuration["storageConfigurationArn"]
    assert stored["mediaTypes"] == ["AUDIO_ONLY"]


def test_get_stage_returns_the_created_stage(ivs_client, stage) -> None:
    fetched = ivs_client.get_stage(arn=stage["arn"])["stage"]

    assert fetched["arn"] == stage["arn"]
    assert fetched["endpoints"] == stage["endpoints"]
    assert "activeSessionId" not in fetched


def test_get_unknown_stage_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException) as raised:
        ivs_client.get_stage(arn="arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage1")

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_list_stages_lists_summaries(ivs_client) -> None:
    created = ivs_client.create_stage(name="listed", tags={"team": "a"})["stage"]

    summaries = ivs_client.list_stages()["stages"]

    assert summaries == [{"arn": created["arn"], "name": "listed", "tags": {"team": "a"}}]


def test_list_stages_pages_with_max_results_and_next_token(ivs_client) -> None:
    arns = [ivs_client.create_stage(name=f"s{i}")["stage"]["arn"] for i in range(7)]

    first = ivs_client.list_stages(maxResults=3)
    second = ivs_client.list_stages(maxResults=3, nextToken=first["nextToken"])
    third = ivs_client.list_stages(maxResults=3, nextToken=second["nextToken"])

    pages = [first, second, third]
    assert [len(p["stages"]) for p in pages] == [3, 3, 1]
    assert [s["arn"] for p in pages for s in p["stages"]] == arns
    assert "nextToken" not in third


def test_deleting_a_stage_between_pages_skips_nothing(ivs_client) -> None:
    arns = [ivs_client.create_stage()["stage"]["arn"] for _ in range(4)]
    first = ivs_client.list_stages(maxResults=2)

    ivs_client.delete_stage(arn=arns[1])
    second = ivs_client.list_stages(maxResults=2, nextToken=first["nextToken"])

    assert [s["arn"] for s in second["stages"]] == arns[2:]


def test_list_stages_rejects_a_forged_next_token(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        ivs_client.list_stages(nextToken="bm90LWEtdG9rZW4=")


def test_update_stage_renames_it(ivs_client, stage) -> None:
    updated = ivs_client.update_stage(arn=stage["arn"], name="renamed")["stage"]

    assert updated["name"] == "renamed"
    assert ivs_client.get_stage(arn=stage["arn"])["stage"]["name"] == "renamed"


def test_update_stage_without_name_keeps_it(ivs_client, stage) -> None:
    updated = ivs_client.update_stage(arn=stage["arn"])["stage"]

    assert updated["name"] == stage["name"]


def test_update_unknown_stage_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.update_stage(arn="arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage1")


def test_delete_stage_removes_it(ivs_client, stage) -> None:
    ivs_client.delete_stage(arn=stage["arn"])

    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_stage(arn=stage["arn"])
    assert ivs_client.list_stages()["stages"] == []


def test_delete_unknown_stage_is_not_found(ivs_client) -> None:
    with pytest.raises(ClientError) as raised:
        ivs_client.delete_stage(arn="arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage1")

    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
