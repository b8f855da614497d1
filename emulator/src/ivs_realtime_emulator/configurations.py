"""Encoder and storage configurations, and the stage's recording configuration that names one.

Create/Get/List/Delete of EncoderConfiguration and StorageConfiguration, with
the documented defaults (video 1280x720, 30 fps, 2500000 bps), the 20
encoder-configurations quota, and deletion refused (ConflictException) while a
running composition, or a stage's individual participant recording, uses one.
The emulator cannot see S3: a storage configuration's bucket is never checked.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ivs_realtime_emulator import compositions
from ivs_realtime_emulator.common import check_tag_keys, or_404
from ivs_realtime_emulator.errors import conflict, quota_exceeded, validation
from ivs_realtime_emulator.pagination import page
from ivs_realtime_emulator.state import (
    EncoderConfiguration,
    RegionState,
    StorageConfiguration,
    random_id,
)

if TYPE_CHECKING:
    from ivs_realtime_emulator.operations import Handler, OperationContext, Params

#: EncoderConfigurations per account and region (Service Quotas page, adjustable).
MAX_ENCODER_CONFIGURATIONS = 20
#: The model's defaults of `Video`: 1280x720, 30 fps, 2500 kbps.
DEFAULT_VIDEO: Mapping[str, Any] = {
    "width": 1280,
    "height": 720,
    "framerate": 30,
    "bitrate": 2_500_000,
}
#: width x height may not exceed 1920x1080 (or 1080x1920).
MAX_VIDEO_PIXELS = 2_073_600
#: The list operations' documented default page size.
DEFAULT_LIST_SIZE = 100
#: What a stage without individual participant recording shows (AWS CLI create-stage
#: example, plus the model's documented defaults of the members added since).
DEFAULT_RECORDING: Mapping[str, Any] = {
    "storageConfigurationArn": "",
    "mediaTypes": ["AUDIO_VIDEO"],
    "thumbnailConfiguration": {
        "targetIntervalSeconds": 60,
        "storage": ["SEQUENTIAL"],
        "recordingMode": "DISABLED",
    },
    "recordingReconnectWindowSeconds": 0,
    "hlsConfiguration": {"targetSegmentDurationSeconds": 6},
    "recordParticipantReplicas": True,
}


def _new_id(taken: Mapping[str, object], arn_of: Callable[[str], str]) -> str:
    resource_id = random_id(12)
    while arn_of(resource_id) in taken:
        resource_id = random_id(12)
    return resource_id


# ---------------------------------------------------------------- the stage's recording


def recording_configuration(
    region: RegionState, requested: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A stage's autoParticipantRecordingConfiguration with its defaults filled.

    An empty `storageConfigurationArn` disables recording and resets every other
    member to its default, as the model documents; any other must name a storage
    configuration of this region (else ValidationException: CreateStage models no
    ResourceNotFoundException).
    """
    if requested is None or requested.get("storageConfigurationArn", "") == "":
        return copy.deepcopy(dict(DEFAULT_RECORDING))
    arn = requested["storageConfigurationArn"]
    if arn not in region.storage_configurations:
        raise validation(f"storageConfigurationArn {arn} names no storage configuration")
    filled = copy.deepcopy(dict(DEFAULT_RECORDING))
    for name, value in requested.items():
        if isinstance(value, dict) and isinstance(filled.get(name), dict):
            filled[name] = {**filled[name], **copy.deepcopy(value)}
        else:
            filled[name] = copy.deepcopy(value)
    return filled


# ---------------------------------------------------------------- encoder configurations


def encoder_view(configuration: EncoderConfiguration) -> dict[str, Any]:
    return {
        "arn": configuration.arn,
        "name": configuration.name,
        "video": dict(configuration.video),
        "tags": dict(configuration.tags),
    }


def encoder_or_404(ctx: OperationContext, arn: str) -> EncoderConfiguration:
    return or_404(ctx.region.encoder_configurations, arn, "Encoder configuration")


def _video(requested: Mapping[str, Any] | None) -> dict[str, Any]:
    video = {**DEFAULT_VIDEO, **(requested or {})}
    odd = [name for name in ("width", "height") if video[name] % 2 != 0]
    if odd:
        raise validation(f"video {' and '.join(odd)} must be even numbers")
    pixels = video["width"] * video["height"]
    if pixels > MAX_VIDEO_PIXELS:
        raise validation(
            f"video width x height is {pixels} pixels; at most {MAX_VIDEO_PIXELS} "
            "(1920x1080 or 1080x1920) are allowed"
        )
    return video


def create_encoder_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    tags = dict(params.get("tags") or {})
    check_tag_keys(tags)
    video = _video(params.get("video"))
    if len(ctx.region.encoder_configurations) >= MAX_ENCODER_CONFIGURATIONS:
        raise quota_exceeded(
            f"At most {MAX_ENCODER_CONFIGURATIONS} encoder configurations per region"
        )

    def arn_of(resource_id: str) -> str:
        return ctx.state.arn(ctx.region_name, "encoder-configuration", resource_id)

    configuration_id = _new_id(ctx.region.encoder_configurations, arn_of)
    configuration = EncoderConfiguration(
        configuration_id=configuration_id,
        arn=arn_of(configuration_id),
        name=params.get("name") or "",
        video=video,
        seq=ctx.state.next_seq(),
        tags=tags,
    )
    ctx.region.encoder_configurations[configuration.arn] = configuration
    return {"encoderConfiguration": encoder_view(configuration)}


def get_encoder_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    return {"encoderConfiguration": encoder_view(encoder_or_404(ctx, params["arn"]))}


def list_encoder_configurations(ctx: OperationContext, params: Params) -> dict[str, Any]:
    chosen, token = page(
        "ListEncoderConfigurations",
        ctx.region_name,
        params,
        ctx.region.encoder_configurations.values(),
        lambda c: c.seq,
        default_size=DEFAULT_LIST_SIZE,
    )
    summaries = [{"arn": c.arn, "name": c.name, "tags": dict(c.tags)} for c in chosen]
    return {"encoderConfigurations": summaries, "nextToken": token}


def delete_encoder_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    configuration = encoder_or_404(ctx, params["arn"])
    users = [
        c.arn
        for c in compositions.running(ctx)
        if configuration.arn in compositions.encoder_arns(c)
    ]
    if users:
        raise conflict(
            f"Encoder configuration {configuration.arn} is used by running compositions: "
            f"{', '.join(users)}; stop them first"
        )
    del ctx.region.encoder_configurations[configuration.arn]
    return {}


# ---------------------------------------------------------------- storage configurations


def storage_view(configuration: StorageConfiguration) -> dict[str, Any]:
    return {
        "arn": configuration.arn,
        "name": configuration.name,
        "s3": dict(configuration.s3),
        "tags": dict(configuration.tags),
    }


def storage_or_404(ctx: OperationContext, arn: str) -> StorageConfiguration:
    return or_404(ctx.region.storage_configurations, arn, "Storage configuration")


def create_storage_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    tags = dict(params.get("tags") or {})
    check_tag_keys(tags)

    def arn_of(resource_id: str) -> str:
        return ctx.state.arn(ctx.region_name, "storage-configuration", resource_id)

    configuration_id = _new_id(ctx.region.storage_configurations, arn_of)
    configuration = StorageConfiguration(
        configuration_id=configuration_id,
        arn=arn_of(configuration_id),
        name=params.get("name") or "",
        s3={"bucketName": params["s3"]["bucketName"]},
        seq=ctx.state.next_seq(),
        tags=tags,
    )
    ctx.region.storage_configurations[configuration.arn] = configuration
    return {"storageConfiguration": storage_view(configuration)}


def get_storage_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    return {"storageConfiguration": storage_view(storage_or_404(ctx, params["arn"]))}


def list_storage_configurations(ctx: OperationContext, params: Params) -> dict[str, Any]:
    chosen, token = page(
        "ListStorageConfigurations",
        ctx.region_name,
        params,
        ctx.region.storage_configurations.values(),
        lambda c: c.seq,
        default_size=DEFAULT_LIST_SIZE,
    )
    return {"storageConfigurations": [storage_view(c) for c in chosen], "nextToken": token}


def delete_storage_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    configuration = storage_or_404(ctx, params["arn"])
    users = [
        c.arn
        for c in compositions.running(ctx)
        if configuration.arn in compositions.storage_arns(c)
    ]
    users += [
        stage.arn
        for stage in ctx.region.stages.values()
        if (stage.auto_participant_recording or {}).get("storageConfigurationArn")
        == configuration.arn
    ]
    if users:
        raise conflict(
            f"Storage configuration {configuration.arn} is in use by: {', '.join(users)}"
        )
    del ctx.region.storage_configurations[configuration.arn]
    return {}


def handlers() -> dict[str, Handler]:
    return {
        "CreateEncoderConfiguration": create_encoder_configuration,
        "GetEncoderConfiguration": get_encoder_configuration,
        "ListEncoderConfigurations": list_encoder_configurations,
        "DeleteEncoderConfiguration": delete_encoder_configuration,
        "CreateStorageConfiguration": create_storage_configuration,
        "GetStorageConfiguration": get_storage_configuration,
        "ListStorageConfigurations": list_storage_configurations,
        "DeleteStorageConfiguration": delete_storage_configuration,
    }


MUTATING = frozenset(
    {
        "CreateEncoderConfiguration",
        "DeleteEncoderConfiguration",
        "CreateStorageConfiguration",
        "DeleteStorageConfiguration",
    }
)
