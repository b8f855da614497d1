"""Ingest configurations: RTMP(S) publishing into a stage, and its simulation.

CreateIngestConfiguration, GetIngestConfiguration, ListIngestConfigurations,
UpdateIngestConfiguration and DeleteIngestConfiguration, with the rules of the
IVS real-time API reference (see the emulator README for each source):

- `ingestProtocol` RTMP needs `insecureIngest` true (ValidationException);
- `stageArn` is optional ("" when absent) and the only member Update changes
  (with `redundantIngest`); an ACTIVE configuration cannot be updated
  (ConflictException);
- it is ACTIVE while a publisher streams with its key, INACTIVE otherwise;
  deleting an ACTIVE one needs `force`, which disconnects the publisher.

The emulator carries no media, so `POST /_emulator/ingest` plays the encoder:
`{"streamKey": ..., "action": "start" | "stop", "protocol"?: "RTMP" | "RTMPS"}`
connects (or disconnects) the configuration's participant to its stage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ivs_realtime_emulator import departures
from ivs_realtime_emulator.common import check_attributes, check_tag_keys, or_404, stage_or_404
from ivs_realtime_emulator.errors import conflict, validation
from ivs_realtime_emulator.pagination import page
from ivs_realtime_emulator.records import (
    ACTIVE,
    IngestConfiguration,
    ParticipantEvent,
    RedundantCredential,
)
from ivs_realtime_emulator.state import CONNECTED, EmulatorState, RegionState, random_id

if TYPE_CHECKING:
    from ivs_realtime_emulator.operations import OperationContext

Params = Mapping[str, Any]

_STREAM_KEY = re.compile(r"rt_([0-9]+)_([a-z0-9-]+)_([a-zA-Z0-9-]+)_.+")


def _stream_key(ctx: OperationContext, config_id: str) -> str:
    """`rt_<account>_<region>_<id>_<secret>`: the model's StreamKey pattern."""
    return f"rt_{ctx.state.account_id}_{ctx.region_name}_{config_id}_{random_id(24)}"


def _redundant(ctx: OperationContext, config_id: str, enabled: bool) -> list[RedundantCredential]:
    if not enabled:
        return []
    return [RedundantCredential(random_id(12), _stream_key(ctx, config_id))]


def view(configuration: IngestConfiguration) -> dict[str, Any]:
    return {
        "name": configuration.name,
        "arn": configuration.arn,
        "ingestProtocol": configuration.ingest_protocol,
        "streamKey": configuration.stream_key,
        "stageArn": configuration.stage_arn,
        "participantId": configuration.participant_id,
        "state": configuration.state,
        "userId": configuration.user_id,
        "redundantIngest": configuration.redundant_ingest,
        "redundantIngestCredentials": [
            {"participantId": c.participant_id, "streamKey": c.stream_key}
            for c in configuration.redundant_credentials
        ]
        if configuration.redundant_ingest
        else None,
        "attributes": dict(configuration.attributes),
        "tags": dict(configuration.tags),
    }


def _configuration_or_404(ctx: OperationContext, arn: str) -> IngestConfiguration:
    return or_404(ctx.region.ingest_configurations, arn, "Ingest configuration")


def create_ingest_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    tags = dict(params.get("tags") or {})
    check_tag_keys(tags)
    attributes = dict(params.get("attributes") or {})
    check_attributes(attributes)
    protocol: str = params["ingestProtocol"]
    insecure = bool(params.get("insecureIngest") or False)
    if protocol == "RTMP" and not insecure:
        raise validation("insecureIngest must be true when ingestProtocol is RTMP")
    stage_arn: str = params.get("stageArn") or ""
    if stage_arn and stage_arn not in ctx.region.stages:
        # CreateIngestConfiguration models no ResourceNotFoundException.
        raise validation(f"Stage {stage_arn} not found")
    config_id = random_id(12)
    arn = ctx.state.arn(ctx.region_name, "ingest-configuration", config_id)
    redundant = bool(params.get("redundantIngest") or False)
    configuration = IngestConfiguration(
        config_id=config_id,
        arn=arn,
        name=params.get("name") or "",
        ingest_protocol=protocol,
        insecure_ingest=insecure,
        stream_key=_stream_key(ctx, config_id),
        participant_id=random_id(12),
        seq=ctx.state.next_seq(),
        stage_arn=stage_arn,
        user_id=params.get("userId"),
        attributes=attributes,
        tags=tags,
        redundant_ingest=redundant,
        redundant_credentials=_redundant(ctx, config_id, redundant),
    )
    ctx.region.ingest_configurations[arn] = configuration
    return {"ingestConfiguration": view(configuration)}


def get_ingest_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    return {"ingestConfiguration": view(_configuration_or_404(ctx, params["arn"]))}


def list_ingest_configurations(ctx: OperationContext, params: Params) -> dict[str, Any]:
    by_stage, by_state = params.get("filterByStageArn"), params.get("filterByState")
    if by_stage is not None and by_state is not None:
        raise validation("Only one filter (filterByStageArn or filterByState) may be given")
    found = list(ctx.region.ingest_configurations.values())
    if by_stage is not None:
        found = [c for c in found if c.stage_arn == by_stage]
    if by_state is not None:
        found = [c for c in found if c.state == by_state]
    chosen, token = page(
        "ListIngestConfigurations", ctx.region_name, params, found, lambda c: c.seq
    )
    return {"ingestConfigurations": [view(c) for c in chosen], "nextToken": token}


def update_ingest_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    configuration = _configuration_or_404(ctx, params["arn"])
    if configuration.state == ACTIVE:
        raise conflict(f"Ingest configuration {configuration.arn} is active and cannot be updated")
    stage_arn = params.get("stageArn")
    if stage_arn:
        stage_or_404(ctx.region, stage_arn)
    if stage_arn is not None:
        configuration.stage_arn = stage_arn
    redundant = params.get("redundantIngest")
    if redundant is not None and redundant != configuration.redundant_ingest:
        configuration.redundant_ingest = redundant
        configuration.redundant_credentials = _redundant(ctx, configuration.config_id, redundant)
    return {"ingestConfiguration": view(configuration)}


def delete_ingest_configuration(ctx: OperationContext, params: Params) -> dict[str, Any]:
    configuration = _configuration_or_404(ctx, params["arn"])
    if configuration.state == ACTIVE:
        if not params.get("force"):
            raise conflict(
                f"Ingest configuration {configuration.arn} is publishing; "
                "set force to true to disconnect the publisher and delete it"
            )
        _stop_publishing(ctx.region, configuration, ctx.now)
    del ctx.region.ingest_configurations[configuration.arn]
    return {}


HANDLERS: dict[str, Callable[[OperationContext, Params], dict[str, Any]]] = {
    "CreateIngestConfiguration": create_ingest_configuration,
    "GetIngestConfiguration": get_ingest_configuration,
    "ListIngestConfigurations": list_ingest_configurations,
    "UpdateIngestConfiguration": update_ingest_configuration,
    "DeleteIngestConfiguration": delete_ingest_configuration,
}
MUTATING = frozenset(
    {"CreateIngestConfiguration", "UpdateIngestConfiguration", "DeleteIngestConfiguration"}
)


# ---------------------------------------------------------------- POST /_emulator/ingest


class IngestRejected(Exception):
    def __init__(self, reason: str, message: str, status: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


def _stop_publishing(
    region: RegionState, configuration: IngestConfiguration, now: datetime
) -> None:
    stage = region.stages.get(configuration.stage_arn)
    session = stage.active_session() if stage else None
    participant = session.participants.get(configuration.participant_id) if session else None
    if stage is not None and participant is not None and participant.state == CONNECTED:
        stage.disconnect(participant.participant_id, now, ban=False)
        departures.participants_left(region, stage, [participant], now)
    configuration.state = "INACTIVE"


def _find(state: EmulatorState, stream_key: str) -> tuple[RegionState, IngestConfiguration]:
    found = _STREAM_KEY.fullmatch(stream_key)
    region = state.regions.get(found.group(2)) if found else None
    if region is not None:
        for configuration in region.ingest_configurations.values():
            keys = [configuration.stream_key] + [
                c.stream_key for c in configuration.redundant_credentials
            ]
            if stream_key in keys:
                return region, configuration
    raise IngestRejected("invalid_stream_key", "no ingest configuration has this stream key", 404)


def parse_ingest_request(body: bytes) -> tuple[str, str, str | None]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise IngestRejected("invalid_request", "the body must be JSON", 400) from None
    usage = 'the body must be {"streamKey": "...", "action": "start"|"stop", "protocol"?: ...}'
    if not isinstance(document, dict) or not isinstance(document.get("streamKey"), str):
        raise IngestRejected("invalid_request", usage, 400)
    action, protocol = document.get("action"), document.get("protocol")
    if action not in ("start", "stop") or protocol not in (None, "RTMP", "RTMPS"):
        raise IngestRejected("invalid_request", usage, 400)
    return document["streamKey"], action, protocol


def simulate(
    state: EmulatorState, stream_key: str, action: str, protocol: str | None, now: datetime
) -> dict[str, Any]:
    """An encoder starts or stops publishing with `stream_key`."""
    region, configuration = _find(state, stream_key)
    if action == "stop":
        if configuration.state != ACTIVE:
            raise IngestRejected("not_publishing", "nobody publishes with this stream key", 409)
        _stop_publishing(region, configuration, now)
        return {"arn": configuration.arn, "state": configuration.state}
    if configuration.state == ACTIVE:
        raise IngestRejected("reuse_of_stream_key", "this stream key is already publishing", 409)
    if not configuration.stage_arn:
        raise IngestRejected(
            "stage_not_associated",
            "the ingest configuration has no stageArn: the key is unusable",
            409,
        )
    stage = region.stages.get(configuration.stage_arn)
    if stage is None:
        raise IngestRejected(
            "stage_not_found", f"stage {configuration.stage_arn} does not exist", 404
        )
    if protocol == "RTMP" and configuration.ingest_protocol == "RTMPS":
        raise IngestRejected(
            "invalid_protocol", "the ingest configuration is RTMPS; RTMP was used", 400
        )
    participant = stage.connect(
        participant_id=configuration.participant_id,
        user_id=configuration.user_id,
        attributes=dict(configuration.attributes),
        capabilities=["PUBLISH"],
        now=now,
        seq=state.next_seq(),
    )
    participant.protocol = protocol or configuration.ingest_protocol
    participant.ingest_configuration_arn = configuration.arn
    participant.redundant_ingest = configuration.redundant_ingest
    participant.events.append(ParticipantEvent("PUBLISH_STARTED", now, participant.participant_id))
    configuration.state = ACTIVE
    return {
        "arn": configuration.arn,
        "state": configuration.state,
        "participantId": participant.participant_id,
        "stageArn": stage.arn,
    }
