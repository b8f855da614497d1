"""What follows when participants leave a stage: ingest configurations and replicas react.

Called by every path that disconnects participants (DisconnectParticipant,
DeleteStage, RevokeConnectionToken, the end of an RTMP publish, force-deleting an
ingest configuration), after the stage has marked them DISCONNECTED:

- an ingest configuration whose publisher left becomes INACTIVE (PUBLISH_STOPPED),
  and DisconnectParticipant also sets its `stageArn` to "" (the API reference of
  DisconnectParticipant says so);
- a replicated participant that leaves its source stage stops every ACTIVE
  replication of it (its replicas leave their destination stages);
- a replica that leaves its destination stage stops that replication.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ivs_realtime_emulator.records import (
    ACTIVE,
    INACTIVE,
    STOPPED,
    ParticipantEvent,
    ParticipantReplica,
)
from ivs_realtime_emulator.state import Participant, RegionState, Stage


def _before_left(participant: Participant, event: ParticipantEvent) -> None:
    """Record `event` just before the LEFT the disconnect recorded (if it did)."""
    events = participant.events
    if events and events[-1].name == "LEFT":
        events.insert(len(events) - 1, event)
    else:
        events.append(event)


def find_participant(
    region: RegionState, stage_arn: str, session_id: str, pid: str
) -> Participant | None:
    stage = region.stages.get(stage_arn)
    session = stage.sessions.get(session_id) if stage else None
    return session.participants.get(pid) if session else None


def refresh_source_state(region: RegionState, source: Participant, stage_arn: str) -> None:
    """A source participant's replicationState: ACTIVE while any replica of it is."""
    active = any(
        r.replication_state == ACTIVE
        and r.source_stage_arn == stage_arn
        and r.participant_id == source.participant_id
        for r in region.replicas
    )
    source.replication_state = ACTIVE if active else STOPPED


def stop_replica(region: RegionState, replica: ParticipantReplica, now: datetime) -> None:
    """Stop one ACTIVE replication: the replica leaves, the source records it."""
    if replica.replication_state != ACTIVE:
        return
    replica.replication_state = STOPPED
    destination = region.stages.get(replica.destination_stage_arn)
    copy = find_participant(
        region,
        replica.destination_stage_arn,
        replica.destination_session_id,
        replica.participant_id,
    )
    if copy is not None:
        copy.replication_state = STOPPED
    if destination is not None:
        destination.disconnect(replica.participant_id, now, ban=False)
    source = find_participant(
        region, replica.source_stage_arn, replica.source_session_id, replica.participant_id
    )
    if source is not None:
        source.events.append(
            ParticipantEvent(
                "REPLICATION_STOPPED",
                now,
                replica.participant_id,
                destination_stage_arn=replica.destination_stage_arn,
                destination_session_id=replica.destination_session_id,
            )
        )
        refresh_source_state(region, source, replica.source_stage_arn)


def participants_left(
    region: RegionState,
    stage: Stage,
    participants: Iterable[Participant],
    now: datetime,
    *,
    disconnected: bool = False,
    stage_deleted: bool = False,
) -> None:
    for participant in participants:
        arn = participant.ingest_configuration_arn
        configuration = region.ingest_configurations.get(arn) if arn else None
        if configuration is not None and configuration.state == ACTIVE:
            configuration.state = INACTIVE
            _before_left(
                participant, ParticipantEvent("PUBLISH_STOPPED", now, participant.participant_id)
            )
            if disconnected:
                configuration.stage_arn = ""
        pid = participant.participant_id
        for replica in list(region.replicas):
            if replica.replication_state != ACTIVE or replica.participant_id != pid:
                continue
            if replica.source_stage_arn == stage.arn or (
                replica.destination_stage_arn == stage.arn
                and participant.replication_type == "REPLICA"
            ):
                stop_replica(region, replica, now)
    if stage_deleted:
        # Replicas copied into the deleted stage have left it with everyone else.
        for replica in region.replicas:
            if replica.replication_state == ACTIVE and replica.destination_stage_arn == stage.arn:
                stop_replica(region, replica, now)
