"""Encoder and storage configurations, and the stage's recording configuration that names one."""

from __future__ import annotations

import pytest

REGION_ACCOUNT = "arn:aws:ivs:us-east-1:123456789012"


def _error_code(raised: pytest.ExceptionInfo) -> str:
    return raised.value.response["Error"]["Code"]


# ---------------------------------------------------------------- encoder configurations


def test_create_encoder_configuration_fills_the_documented_video_defaults(ivs_client) -> None:
    created = ivs_client.create_encoder_configuration(name="enc-1")["encoderConfiguration"]

    assert created["video"] == {"width": 1280, "height": 720, "framerate": 30, "bitrate": 2500000}
    assert created["name"] == "enc-1"
    assert created["tags"] == {}


def test_encoder_configuration_arn_names_region_account_and_type(ivs_client) -> None:
    arn = ivs_client.create_encoder_configuration()["encoderConfiguration"]["arn"]

    prefix, resource_id = arn.rsplit("/", 1)
    assert prefix == f"{REGION_ACCOUNT}:encoder-configuration"
    assert len(resource_id) == 12
    assert resource_id.isalnum()


def test_create_encoder_configuration_keeps_given_video_and_defaults_the_rest(ivs_client) -> None:
    video = ivs_client.create_encoder_configuration(video={"width": 1920, "height": 1080})[
        "encoderConfiguration"
    ]["video"]

    assert video == {"width": 1920, "height": 1080, "framerate": 30, "bitrate": 2500000}


def test_get_encoder_configuration_returns_the_created_one(ivs_client) -> None:
    created = ivs_client.create_encoder_configuration(
        video={"framerate": 60, "bitrate": 8500000}, tags={"team": "a"}
    )["encoderConfiguration"]

    fetched = ivs_client.get_encoder_configuration(arn=created["arn"])["encoderConfiguration"]

    assert fetched == created


def test_get_unknown_encoder_configuration_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_encoder_configuration(arn=f"{REGION_ACCOUNT}:encoder-configuration/nope")


def test_list_encoder_configurations_lists_summaries_in_creation_order(ivs_client) -> None:
    first = ivs_client.create_encoder_configuration(name="a")["encoderConfiguration"]
    second = ivs_client.create_encoder_configuration(name="b", tags={"k": "v"})[
        "encoderConfiguration"
    ]

    listed = ivs_client.list_encoder_configurations()["encoderConfigurations"]

    assert listed == [
        {"arn": first["arn"], "name": "a", "tags": {}},
        {"arn": second["arn"], "name": "b", "tags": {"k": "v"}},
    ]


def test_list_encoder_configurations_pages_with_next_token(ivs_client) -> None:
    arns = [ivs_client.create_encoder_configuration()["encoderConfiguration"]["arn"] for _ in "abc"]

    first = ivs_client.list_encoder_configurations(maxResults=2)
    second = ivs_client.list_encoder_configurations(maxResults=2, nextToken=first["nextToken"])

    assert [c["arn"] for c in first["encoderConfigurations"]] == arns[:2]
    assert [c["arn"] for c in second["encoderConfigurations"]] == arns[2:]
    assert "nextToken" not in second


def test_delete_encoder_configuration_removes_it(ivs_client) -> None:
    arn = ivs_client.create_encoder_configuration()["encoderConfiguration"]["arn"]

    ivs_client.delete_encoder_configuration(arn=arn)

    assert ivs_client.list_encoder_configurations()["encoderConfigurations"] == []
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_encoder_configuration(arn=arn)


def test_delete_unknown_encoder_configuration_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.delete_encoder_configuration(arn=f"{REGION_ACCOUNT}:encoder-configuration/x")


def test_video_width_must_be_even(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException) as raised:
        ivs_client.create_encoder_configuration(video={"width": 1279})

    assert "even" in raised.value.response["Error"]["Message"]


def test_video_height_of_an_even_number_is_accepted(ivs_client) -> None:
    video = ivs_client.create_encoder_configuration(video={"height": 2})["encoderConfiguration"][
        "video"
    ]

    assert video["height"] == 2


def test_video_of_1080_by_1920_pixels_is_accepted(ivs_client) -> None:
    video = ivs_client.create_encoder_configuration(video={"width": 1080, "height": 1920})[
        "encoderConfiguration"
    ]["video"]

    assert (video["width"], video["height"]) == (1080, 1920)


def test_video_over_2073600_pixels_is_refused(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException) as raised:
        ivs_client.create_encoder_configuration(video={"width": 1920, "height": 1082})

    assert "2073600" in raised.value.response["Error"]["Message"]


def test_video_bitrate_over_8500000_is_refused_by_the_model(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException) as raised:
        loose_client.create_encoder_configuration(video={"bitrate": 8500001})

    assert "video.bitrate" in raised.value.response["Error"]["Message"]


def test_video_framerate_of_60_is_accepted(ivs_client) -> None:
    video = ivs_client.create_encoder_configuration(video={"framerate": 60})[
        "encoderConfiguration"
    ]["video"]

    assert video["framerate"] == 60


def test_video_framerate_over_60_is_refused_by_the_model(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException) as raised:
        loose_client.create_encoder_configuration(video={"framerate": 61})

    assert "video.framerate" in raised.value.response["Error"]["Message"]


def test_twentieth_encoder_configuration_is_accepted(ivs_client) -> None:
    for _ in range(19):
        ivs_client.create_encoder_configuration()

    ivs_client.create_encoder_configuration()

    assert len(ivs_client.list_encoder_configurations()["encoderConfigurations"]) == 20


def test_twenty_first_encoder_configuration_exceeds_the_quota(ivs_client) -> None:
    for _ in range(20):
        ivs_client.create_encoder_configuration()

    with pytest.raises(ivs_client.exceptions.ServiceQuotaExceededException):
        ivs_client.create_encoder_configuration()


def test_encoder_configuration_quota_is_per_region(make_client) -> None:
    east, west = make_client("us-east-1"), make_client("us-west-2")
    for _ in range(20):
        east.create_encoder_configuration()

    assert ":us-west-2:" in west.create_encoder_configuration()["encoderConfiguration"]["arn"]


def test_encoder_configuration_reserved_tag_key_is_refused(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        ivs_client.create_encoder_configuration(tags={"aws:x": "y"})


# ---------------------------------------------------------------- storage configurations


def test_create_storage_configuration_returns_bucket_name_and_arn(ivs_client) -> None:
    created = ivs_client.create_storage_configuration(
        name="rec", s3={"bucketName": "my-recordings"}, tags={"env": "dev"}
    )["storageConfiguration"]

    assert created["arn"].startswith(f"{REGION_ACCOUNT}:storage-configuration/")
    assert created["s3"] == {"bucketName": "my-recordings"}
    assert created["name"] == "rec"
    assert created["tags"] == {"env": "dev"}


def test_storage_configuration_requires_s3(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException) as raised:
        loose_client.create_storage_configuration(name="x")

    assert "'s3'" in raised.value.response["Error"]["Message"]


def test_bucket_name_of_3_characters_is_accepted(ivs_client) -> None:
    created = ivs_client.create_storage_configuration(s3={"bucketName": "abc"})

    assert created["storageConfiguration"]["s3"]["bucketName"] == "abc"


def test_bucket_name_of_2_characters_is_refused_by_the_model(loose_client) -> None:
    with pytest.raises(loose_client.exceptions.ValidationException) as raised:
        loose_client.create_storage_configuration(s3={"bucketName": "ab"})

    assert "s3.bucketName" in raised.value.response["Error"]["Message"]


def test_get_storage_configuration_returns_the_created_one(ivs_client) -> None:
    created = ivs_client.create_storage_configuration(s3={"bucketName": "b-1"})[
        "storageConfiguration"
    ]

    fetched = ivs_client.get_storage_configuration(arn=created["arn"])["storageConfiguration"]

    assert fetched == created


def test_get_unknown_storage_configuration_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_storage_configuration(arn=f"{REGION_ACCOUNT}:storage-configuration/nope")


def test_list_storage_configurations_lists_them_with_their_bucket(ivs_client) -> None:
    created = ivs_client.create_storage_configuration(s3={"bucketName": "b-1"})[
        "storageConfiguration"
    ]

    listed = ivs_client.list_storage_configurations()["storageConfigurations"]

    assert listed == [created]


def test_list_storage_configurations_pages_with_next_token(ivs_client) -> None:
    for bucket in ("b-1", "b-2", "b-3"):
        ivs_client.create_storage_configuration(s3={"bucketName": bucket})

    first = ivs_client.list_storage_configurations(maxResults=2)
    second = ivs_client.list_storage_configurations(maxResults=2, nextToken=first["nextToken"])

    buckets = [c["s3"]["bucketName"] for c in first["storageConfigurations"]]
    buckets += [c["s3"]["bucketName"] for c in second["storageConfigurations"]]
    assert buckets == ["b-1", "b-2", "b-3"]


def test_delete_storage_configuration_removes_it(ivs_client) -> None:
    arn = ivs_client.create_storage_configuration(s3={"bucketName": "b-1"})["storageConfiguration"][
        "arn"
    ]

    ivs_client.delete_storage_configuration(arn=arn)

    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.get_storage_configuration(arn=arn)


def test_delete_unknown_storage_configuration_is_not_found(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.delete_storage_configuration(arn=f"{REGION_ACCOUNT}:storage-configuration/x")


# ---------------------------------------------------------------- the stage's recording


def test_stage_created_without_recording_shows_the_default_configuration(ivs_client) -> None:
    arn = ivs_client.create_stage(name="plain")["stage"]["arn"]

    recording = ivs_client.get_stage(arn=arn)["stage"]["autoParticipantRecordingConfiguration"]

    assert recording["storageConfigurationArn"] == ""
    assert recording["mediaTypes"] == ["AUDIO_VIDEO"]
    assert recording["thumbnailConfiguration"] == {
        "targetIntervalSeconds": 60,
        "storage": ["SEQUENTIAL"],
        "recordingMode": "DISABLED",
    }
    assert recording["recordingReconnectWindowSeconds"] == 0
    assert recording["hlsConfiguration"] == {"targetSegmentDurationSeconds": 6}
    assert recording["recordParticipantReplicas"] is True


def test_stage_recording_media_types_default_to_audio_video(ivs_client) -> None:
    storage_arn = ivs_client.create_storage_configuration(s3={"bucketName": "b-1"})[
        "storageConfiguration"
    ]["arn"]

    recording = ivs_client.create_stage(
        autoParticipantRecordingConfiguration={"storageConfigurationArn": storage_arn}
    )["stage"]["autoParticipantRecordingConfiguration"]

    assert recording["storageConfigurationArn"] == storage_arn
    assert recording["mediaTypes"] == ["AUDIO_VIDEO"]
    assert recording["thumbnailConfiguration"]["recordingMode"] == "DISABLED"


def test_create_stage_with_unknown_storage_configuration_is_refused(ivs_client) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException) as raised:
        ivs_client.create_stage(
            autoParticipantRecordingConfiguration={
                "storageConfigurationArn": f"{REGION_ACCOUNT}:storage-configuration/nope"
            }
        )

    assert "storage" in raised.value.response["Error"]["Message"]
    assert ivs_client.list_stages()["stages"] == []


def test_update_stage_with_unknown_storage_configuration_is_refused(ivs_client, stage) -> None:
    with pytest.raises(ivs_client.exceptions.ValidationException):
        ivs_client.update_stage(
            arn=stage["arn"],
            autoParticipantRecordingConfiguration={
                "storageConfigurationArn": f"{REGION_ACCOUNT}:storage-configuration/nope"
            },
        )


def test_update_stage_with_empty_storage_arn_resets_recording_to_defaults(ivs_client) -> None:
    storage_arn = ivs_client.create_storage_configuration(s3={"bucketName": "b-1"})[
        "storageConfiguration"
    ]["arn"]
    arn = ivs_client.create_stage(
        autoParticipantRecordingConfiguration={
            "storageConfigurationArn": storage_arn,
            "mediaTypes": ["AUDIO_ONLY"],
        }
    )["stage"]["arn"]

    updated = ivs_client.update_stage(
        arn=arn,
        autoParticipantRecordingConfiguration={
            "storageConfigurationArn": "",
            "mediaTypes": ["AUDIO_ONLY"],
        },
    )["stage"]["autoParticipantRecordingConfiguration"]

    assert updated["storageConfigurationArn"] == ""
    assert updated["mediaTypes"] == ["AUDIO_VIDEO"]


def test_storage_configuration_in_use_by_a_stage_cannot_be_deleted(ivs_client) -> None:
    storage_arn = ivs_client.create_storage_configuration(s3={"bucketName": "b-1"})[
        "storageConfiguration"
    ]["arn"]
    stage_arn = ivs_client.create_stage(
        autoParticipantRecordingConfiguration={"storageConfigurationArn": storage_arn}
    )["stage"]["arn"]

    with pytest.raises(ivs_client.exceptions.ConflictException) as raised:
        ivs_client.delete_storage_configuration(arn=storage_arn)

    assert stage_arn in raised.value.response["Error"]["Message"]


def test_storage_configuration_no_longer_used_by_a_stage_can_be_deleted(ivs_client) -> None:
    storage_arn = ivs_client.create_storage_configuration(s3={"bucketName": "b-1"})[
        "storageConfiguration"
    ]["arn"]
    stage_arn = ivs_client.create_stage(
        autoParticipantRecordingConfiguration={"storageConfigurationArn": storage_arn}
    )["stage"]["arn"]
    ivs_client.update_stage(
        arn=stage_arn, autoParticipantRecordingConfiguration={"storageConfigurationArn": ""}
    )

    ivs_client.delete_storage_configuration(arn=storage_arn)

    assert ivs_client.list_storage_configurations()["storageConfigurations"] == []


# ---------------------------------------------------------------- tags


def test_tag_resource_tags_an_encoder_configuration(ivs_client) -> None:
    arn = ivs_client.create_encoder_configuration(tags={"a": "1"})["encoderConfiguration"]["arn"]

    ivs_client.tag_resource(resourceArn=arn, tags={"b": "2"})
    ivs_client.untag_resource(resourceArn=arn, tagKeys=["a"])

    assert ivs_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"b": "2"}
    assert ivs_client.get_encoder_configuration(arn=arn)["encoderConfiguration"]["tags"] == {
        "b": "2"
    }


def test_tag_resource_tags_a_storage_configuration(ivs_client) -> None:
    arn = ivs_client.create_storage_configuration(s3={"bucketName": "b-1"})["storageConfiguration"][
        "arn"
    ]

    ivs_client.tag_resource(resourceArn=arn, tags={"env": "dev"})

    assert ivs_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "dev"}


def test_tags_of_a_deleted_encoder_configuration_are_not_found(ivs_client) -> None:
    arn = ivs_client.create_encoder_configuration()["encoderConfiguration"]["arn"]
    ivs_client.delete_encoder_configuration(arn=arn)

    with pytest.raises(ivs_client.exceptions.ResourceNotFoundException):
        ivs_client.list_tags_for_resource(resourceArn=arn)
