"""Server-side compositions: StartComposition, GetComposition, ListCompositions, StopComposition.

Nothing is mixed, broadcast or recorded; what is emulated is the resource and
its life cycle, deterministically:

- StartComposition answers `STARTING` (the composition and every destination),
  as AWS does; from then on the composition is `ACTIVE`, with each
  destination's `startTime` the composition's.
- StopComposition makes it `STOPPED` at once (AWS passes through `STOPPING`),
  `endTime` the moment of the call.
- It stops by itself, as documented, after the idle timeout (60 s; see
  `OperationContext.composition_idle_timeout`) without any participant
  connected to the stage, whether the stage empties later or is empty when the
  composition starts; after 24 hours in any case; and at once when its stage is
  deleted. These stops are computed from the stage's session history whenever a
  composition is looked at, so `endTime` is the moment the timeout ran out,
  however late it is noticed.
- Stopped compositions stay listed (AWS deletes them "after a few minutes").
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ivs_realtime_emulator.common import check_tag_keys, or_404, stage_or_404
from ivs_realtime_emulator.errors import conflict, quota_exceeded, validation
from ivs_realtime_emulator.pagination import page
from ivs_realtime_emulator.state import (
    ACTIVE,
    STOPPED,
    Composition,
    CompositionDestination,
    RegionState,
    Stage,
    random_id,
)

if TYPE_CHECKING:
    from ivs_realtime_emulator.operations import Handler, OperationContext, Params

#: Without a connected participant for this long, a composition stops (StartComposition).
IDLE_TIMEOUT = timedelta(seconds=60)
#: "Composition: max duration", Service Quotas page (not adjustable).
MAX_DURATION = timedelta(hours=24)
#: Concurrent compositions per account and region, Service Quotas page.
MAX_RUNNING_COMPOSITIONS = 5
DEFAULT_LIST_SIZE = 100
STARTING = "STARTING"

#: The model's documented defaults of each layout.
GRID_DEFAULTS: Mapping[str, Any] = {
    "featuredParticipantAttribute": "",
    "omitStoppedVideo": False,
    "videoAspectRatio": "VIDEO",
    "gridGap": 2,
}
PIP_DEFAULTS: Mapping[str, Any] = {
    "featuredParticipantAttribute": "",
    "omitStoppedVideo": False,
    "videoFillMode": "COVER",
    "gridGap": 0,
    "pipParticipantAttribute": "",
    "pipBehavior": "STATIC",
    "pipOffset": 0,
    "pipPosition": "BOTTOM_RIGHT",
}
RECORDING_DEFAULTS: Mapping[str, Any] = {
    "format": "HLS",
    "hlsConfiguration": {"targetSegmentDurationSeconds": 2},
}
THUMBNAIL_DEFAULTS: Mapping[str, Any] = {"targetIntervalSeconds": 60, "storage": ["SEQUENTIAL"]}

_CHANNEL_ARN = re.compile(r"arn:aws:ivs:([a-z0-9-]+):([0-9]+):channel/[a-zA-Z0-9-]+")


# ---------------------------------------------------------------- life cycle


def _idle_deadline(stage: Stage, since: datetime, timeout: timedelta) -> datetime | None:
    """When the stage first stayed `timeout` without a session after `since`; None if not yet."""
    idle_since = since
    for session in sorted(stage.sessions.values(), key=lambda s: s.start_time):
        if session.end_time is not None and session.end_time <= since:
            continue
        if session.start_time > idle_since and session.start_time - idle_since >= timeout:
            return idle_since + timeout
        if session.end_time is None:
            return None  # a session runs now
        idle_since = max(idle_since, session.end_time)
    return idle_since + timeout


def _stop(composition: Composition, at: datetime) -> None:
    composition.state = STOPPED
    composition.end_time = at
    for destination in composition.destinations:
        if destination.state != STOPPED:
            destination.state = STOPPED
            destination.end_time = at


def settle(region: RegionState, now: datetime, idle_timeout: timedelta) -> None:
    """Stop every running composition whose idle timeout or maximum duration ran out by `now`."""
    for composition in region.compositions.values():
        if not composition.running:
            continue
        deadline = composition.start_time + MAX_DURATION
        stage = region.stages.get(composition.stage_arn)
        if stage is not None:
            idle = _idle_deadline(stage, composition.start_time, idle_timeout)
            if idle is not None:
                deadline = min(deadline, idle)
        if deadline <= now:
            _stop(composition, deadline)


def running(ctx: OperationContext) -> list[Composition]:
    """The compositions of the caller's region that have not stopped, as of now."""
    settle(ctx.region, ctx.now, ctx.composition_idle_timeout)
    return [c for c in ctx.region.compositions.values() if c.running]


def stage_deleted(ctx: OperationContext, stage_arn: str) -> None:
    """DeleteStage: the stage's compositions stop now (after any earlier timeout)."""
    for composition in running(ctx):
        if composition.stage_arn == stage_arn:
            _stop(composition, ctx.now)


def encoder_arns(composition: Composition) -> set[str]:
    arns: set[str] = set()
    for destination in composition.destinations:
        channel = destination.configuration.get("channel") or {}
        if channel.get("encoderConfigurationArn"):
            arns.add(channel["encoderConfigurationArn"])
        arns.update((destination.configuration.get("s3") or {}).get("encoderConfigurationArns", []))
    return arns


def storage_arns(composition: Composition) -> set[str]:
    return {
        d.configuration["s3"]["storageConfigurationArn"]
        for d in composition.destinations
        if d.configuration.get("s3")
    }


def _channel_arns(composition: Composition) -> set[str]:
    return {
        d.configuration["channel"]["channelArn"]
        for d in composition.destinations
        if d.configuration.get("channel")
    }


# ---------------------------------------------------------------- views


def _destination_view(destination: CompositionDestination, starting: bool) -> dict[str, Any]:
    return {
        "id": destination.destination_id,
        "state": STARTING if starting else destination.state,
        "startTime": None if starting else destination.start_time,
        "endTime": destination.end_time,
        "configuration": copy.deepcopy(destination.configuration),
        "detail": copy.deepcopy(destination.detail),
    }


def composition_view(composition: Composition, starting: bool = False) -> dict[str, Any]:
    """The Composition shape; `starting`: as StartComposition answers, before it is ACTIVE."""
    return {
        "arn": composition.arn,
        "stageArn": composition.stage_arn,
        "state": STARTING if starting else composition.state,
        "layout": copy.deepcopy(composition.layout),
        "destinations": [_destination_view(d, starting) for d in composition.destinations],
        "tags": dict(composition.tags),
        "startTime": composition.start_time,
        "endTime": composition.end_time,
    }


# ---------------------------------------------------------------- StartComposition checks


def _layout(requested: Mapping[str, Any] | None) -> dict[str, Any]:
    requested = requested or {}
    if requested.get("grid") is not None and requested.get("pip") is not None:
        raise validation("layout may have grid or pip, not both")
    if requested.get("pip") is not None:
        return {"pip": {**PIP_DEFAULTS, **requested["pip"]}}
    return {"grid": {**GRID_DEFAULTS, **(requested.get("grid") or {})}}


def _check_kinds(destinations: list[Mapping[str, Any]]) -> None:
    kinds = []
    for index, destination in enumerate(destinations):
        given = [kind for kind in ("channel", "s3") if destination.get(kind) is not None]
        if len(given) != 1:
            raise validation(f"destinations[{index}] must have either channel or s3, exactly one")
        kinds.append(given[0])
    if len(kinds) != len(set(kinds)):
        raise validation("destinations may be one channel, one s3, or one of each")


def _check_references(ctx: OperationContext, destination: Mapping[str, Any]) -> None:
    """Encoder and storage configurations must exist here; a channel must be of this region."""
    channel = destination.get("channel")
    encoders: list[str] = []
    if channel is not None:
        found = _CHANNEL_ARN.fullmatch(channel["channelArn"])
        if found is None or (found.group(1), found.group(2)) != (
            ctx.region_name,
            ctx.state.account_id,
        ):
            raise validation("The channel and the stage must be in the same account and region")
        if channel.get("encoderConfigurationArn"):
            encoders.append(channel["encoderConfigurationArn"])
    s3 = destination.get("s3")
    if s3 is not None:
        encoders += s3["encoderConfigurationArns"]
        or_404(
            ctx.region.storage_configurations,
            s3["storageConfigurationArn"],
            "Storage configuration",
        )
    for arn in encoders:
        or_404(ctx.region.encoder_configurations, arn, "Encoder configuration")


def _filled(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """A DestinationConfiguration with its documented defaults."""
    filled = copy.deepcopy(dict(configuration))
    filled.setdefault("name", "")
    s3 = filled.get("s3")
    if s3 is not None:
        recording = s3.get("recordingConfiguration") or {}
        s3["recordingConfiguration"] = {
            **RECORDING_DEFAULTS,
            **recording,
            "hlsConfiguration": {
                **RECORDING_DEFAULTS["hlsConfiguration"],
                **(recording.get("hlsConfiguration") or {}),
            },
        }
        if s3.get("thumbnailConfigurations"):
            s3["thumbnailConfigurations"] = [
                {**THUMBNAIL_DEFAULTS, **t} for t in s3["thumbnailConfigurations"]
            ]
    return filled


# ---------------------------------------------------------------- operations


def composition_or_404(ctx: OperationContext, arn: str) -> Composition:
    return or_404(ctx.region.compositions, arn, "Composition")


def start_composition(ctx: OperationContext, params: Params) -> dict[str, Any]:
    stage_arn = stage_or_404(ctx.region, params["stageArn"]).arn
    token = params.get("idempotencyToken")
    if token is not None:
        for existing in ctx.region.compositions.values():
            if existing.idempotency_token == token:
                settle(ctx.region, ctx.now, ctx.composition_idle_timeout)
                return {"composition": composition_view(existing)}
    tags = dict(params.get("tags") or {})
    check_tag_keys(tags)
    requested: list[Mapping[str, Any]] = list(params["destinations"])
    _check_kinds(requested)
    layout = _layout(params.get("layout"))
    for destination in requested:
        _check_references(ctx, destination)
    active = running(ctx)
    channels = {arn for c in active for arn in _channel_arns(c)}
    for destination in requested:
        channel = destination.get("channel")
        if channel is not None and channel["channelArn"] in channels:
            raise conflict(f"Channel {channel['channelArn']} is already broadcasting a composition")
    if len(active) >= MAX_RUNNING_COMPOSITIONS:
        raise quota_exceeded(
            f"At most {MAX_RUNNING_COMPOSITIONS} compositions may run at once per region"
        )
    composition_id = random_id(12)
    stage_id = stage_arn.rsplit("/", 1)[1]
    destinations = []
    for destination in requested:
        destination_id = random_id(12)
        detail = None
        if destination.get("s3") is not None:
            prefix = f"{stage_id}/{composition_id}/{destination_id}/composite"
            detail = {"s3": {"recordingPrefix": prefix}}
        destinations.append(
            CompositionDestination(
                destination_id=destination_id,
                configuration=_filled(destination),
                state=ACTIVE,
                start_time=ctx.now,
                detail=detail,
            )
        )
    composition = Composition(
        composition_id=composition_id,
        arn=ctx.state.arn(ctx.region_name, "composition", composition_id),
        stage_arn=stage_arn,
        layout=layout,
        destinations=destinations,
        state=ACTIVE,
        start_time=ctx.now,
        seq=ctx.state.next_seq(),
        tags=tags,
        idempotency_token=token,
    )
    ctx.region.compositions[composition.arn] = composition
    return {"composition": composition_view(composition, starting=True)}


def get_composition(ctx: OperationContext, params: Params) -> dict[str, Any]:
    settle(ctx.region, ctx.now, ctx.composition_idle_timeout)
    return {"composition": composition_view(composition_or_404(ctx, params["arn"]))}


def list_compositions(ctx: OperationContext, params: Params) -> dict[str, Any]:
    settle(ctx.region, ctx.now, ctx.composition_idle_timeout)
    chosen = list(ctx.region.compositions.values())
    stage_arn = params.get("filterByStageArn")
    if stage_arn is not None:
        chosen = [c for c in chosen if c.stage_arn == stage_arn]
    encoder_arn = params.get("filterByEncoderConfigurationArn")
    if encoder_arn is not None:
        chosen = [c for c in chosen if encoder_arn in encoder_arns(c)]
    listed, token = page(
        "ListCompositions",
        ctx.region_name,
        params,
        chosen,
        lambda c: c.seq,
        default_size=DEFAULT_LIST_SIZE,
    )
    # CompositionSummary's shape leaves out the layout and destination configurations.
    return {"compositions": [composition_view(c) for c in listed], "nextToken": token}


def stop_composition(ctx: OperationContext, params: Params) -> dict[str, Any]:
    composition = composition_or_404(ctx, params["arn"])
    settle(ctx.region, ctx.now, ctx.composition_idle_timeout)
    if composition.running:
        _stop(composition, ctx.now)
    return {}


def handlers() -> dict[str, Handler]:
    return {
        "StartComposition": start_composition,
        "GetComposition": get_composition,
        "ListCompositions": list_compositions,
        "StopComposition": stop_composition,
    }


MUTATING = frozenset({"StartComposition", "StopComposition"})
