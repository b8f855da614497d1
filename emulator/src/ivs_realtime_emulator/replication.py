"""Participant replication: StartParticipantReplication, StopParticipantReplication,
ListParticipantReplicas.

A publisher connected to a source stage is copied into a destination stage of
the same region: the replica joins the destination (starting its session if
needed) with the same participant ID, user ID and the token's attributes merged
with the request's `attributes` (the request's win, as the API reference says).
The source participant shows `replicationType` SOURCE, the copy REPLICA with its
`sourceStageArn`/`sourceSessionId`; both show `replicationState`.

Rules the API reference leaves open, chosen as the simplest faithful behaviour:
the participant must be CONNECTED to the source stage's running session with the
PUBLISH capability (ResourceNotFoundException / ValidationException otherwise);
source and destination must differ (ValidationException); a replica cannot be
replicated again (ValidationException); an ACTIVE replication of the same
participant to the same destination is a ConflictException. A replication stops
when StopParticipantReplication is called, when the source participant or the
replica leaves, or when either stage is deleted. `reconnectWindowSeconds` is
stored and returned nowhere (no output shape has it): a participant disconnected
by the API may never rejoin, so no window can ever be used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ivs_realtime_emulator import departures
from ivs_realtime_emulator.common import check_attributes, stage_or_404
from ivs_realtime_emulator.errors import conflict, not_found, validation
from ivs_realtime_emulator.pagination import page
from ivs_realtime_emulator.records import ACTIVE, ParticipantEvent, ParticipantReplica
from ivs_realtime_emulator.state import CONNECTED

if TYPE_CHECKING:
    from ivs_realtime_emulator.operations import OperationContext

Params = Mapping[str, Any]


def view(replica: ParticipantReplica) -> dict[str, Any]:
    return {
        "sourceStageArn": replica.source_stage_arn,
        "participantId": replica.participant_id,
        "sourceSessionId": replica.source_session_id,
        "destinationStageArn": replica.destination_stage_arn,
        "destinationSessionId": replica.destination_session_id,
        "replicationState": replica.replication_state,
    }


def start_participant_replication(ctx: OperationContext, params: Params) -> dict[str, Any]:
    attributes = dict(params.get("attributes") or {})
    check_attributes(attributes)
    if params["sourceStageArn"] == params["destinationStageArn"]:
        raise validation("sourceStageArn and destinationStageArn must be different stages")
    source = stage_or_404(ctx.region, params["sourceStageArn"])
    destination = stage_or_404(ctx.region, params["destinationStageArn"])
    pid: str = params["participantId"]
    session = source.active_session()
    participant = session.participants.get(pid) if session else None
    if session is None or participant is None or participant.state != CONNECTED:
        raise not_found(f"Participant {pid} is not connected to {source.arn}")
    if participant.replication_type == "REPLICA":
        raise validation(f"Participant {pid} is itself a replica and cannot be replicated")
    if "PUBLISH" not in participant.capabilities:
        raise validation(f"Participant {pid} cannot publish: only publishers are replicated")
    for existing in ctx.region.replicas:
        if (
            existing.replication_state == ACTIVE
            and existing.participant_id == pid
            and existing.source_stage_arn == source.arn
            and existing.destination_stage_arn == destination.arn
        ):
            raise conflict(f"Participant {pid} is already replicated to {destination.arn}")
    target = destination.active_session()
    if target is not None and pid in target.participants:
        copy = target.participants[pid]
        if copy.state == CONNECTED:
            raise conflict(f"Participant {pid} is already connected to {destination.arn}")
    merged = {**participant.attributes, **attributes}
    check_attributes(merged)
    copy = destination.connect(
        participant_id=pid,
        user_id=participant.user_id,
        attributes=merged,
        capabilities=list(participant.capabilities),
        now=ctx.now,
        seq=ctx.state.next_seq(),
        replica=True,
    )
    destination_session = destination.sessions[destination.active_session_id or ""]
    copy.replication_type = "REPLICA"
    copy.replication_state = ACTIVE
    copy.source_stage_arn = source.arn
    copy.source_session_id = session.session_id
    copy.protocol = participant.protocol
    replica = ParticipantReplica(
        source_stage_arn=source.arn,
        participant_id=pid,
        source_session_id=session.session_id,
        destination_stage_arn=destination.arn,
        destination_session_id=destination_session.session_id,
        seq=ctx.state.next_seq(),
        reconnect_window_seconds=params.get("reconnectWindowSeconds") or 0,
        attributes=attributes,
    )
    ctx.region.replicas.append(replica)
    participant.replication_type = "SOURCE"
    participant.replication_state = ACTIVE
    participant.events.append(
        ParticipantEvent(
            "REPLICATION_STARTED",
            ctx.now,
            pid,
            destination_stage_arn=destination.arn,
            destination_session_id=destination_session.session_id,
        )
    )
    return {}


def stop_participant_replication(ctx: OperationContext, params: Params) -> dict[str, Any]:
    stage_or_404(ctx.region, params["sourceStageArn"])
    stage_or_404(ctx.region, params["destinationStageArn"])
    for replica in ctx.region.replicas:
        if (
            replica.replication_state == ACTIVE
            and replica.participant_id == params["participantId"]
            and replica.source_stage_arn == params["sourceStageArn"]
            and replica.destination_stage_arn == params["destinationStageArn"]
        ):
            departures.stop_replica(ctx.region, replica, ctx.now)
            return {}
    raise not_found(
        f"Participant {params['participantId']} is not replicated from "
        f"{params['sourceStageArn']} to {params['destinationStageArn']}"
    )


def list_participant_replicas(ctx: OperationContext, params: Params) -> dict[str, Any]:
    # The model gives this operation no ResourceNotFoundException: an unknown
    # stage or participant has no replicas.
    found = [
        r
        for r in ctx.region.replicas
        if r.source_stage_arn == params["sourceStageArn"]
        and r.participant_id == params["participantId"]
    ]
    chosen, token = page("ListParticipantReplicas", ctx.region_name, params, found, lambda r: r.seq)
    return {"replicas": [view(r) for r in chosen], "nextToken": token}


HANDLERS: dict[str, Callable[[OperationContext, Params], dict[str, Any]]] = {
    "StartParticipantReplication": start_participant_replication,
    "StopParticipantReplication": stop_participant_replication,
    "ListParticipantReplicas": list_participant_replicas,
}
MUTATING = frozenset({"StartParticipantReplication", "StopParticipantReplication"})
