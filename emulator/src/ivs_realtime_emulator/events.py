"""ListParticipantEvents: what happened to a participant during one stage session.

The emulator carries no media, so it records the events its own paths cause:

- JOINED: `POST /_emulator/join`; an RTMP publish starts; a replica joins its
  destination (`replica` true);
- LEFT: DisconnectParticipant, DeleteStage, RevokeConnectionToken, an RTMP
  publish stops, a replication stops (on the replica);
- PUBLISH_STARTED / PUBLISH_STOPPED: an RTMP publish starts / stops
  (`POST /_emulator/ingest`);
- TOKEN_EXCHANGED: `POST /_emulator/exchange`, with `previousToken`, `newToken`;
- REPLICATION_STARTED / REPLICATION_STOPPED: on the source participant, with the
  destination stage and session.

Never produced: SUBSCRIBE_*, *_ERROR (no media flows, and a refused join names no
participant of the session).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ivs_realtime_emulator.pagination import page
from ivs_realtime_emulator.records import ParticipantEvent

if TYPE_CHECKING:
    from ivs_realtime_emulator.operations import OperationContext

Params = Mapping[str, Any]


def view(event: ParticipantEvent) -> dict[str, Any]:
    return {
        "name": event.name,
        "participantId": event.participant_id,
        "eventTime": event.event_time,
        "remoteParticipantId": event.remote_participant_id,
        "errorCode": event.error_code,
        "destinationStageArn": event.destination_stage_arn,
        "destinationSessionId": event.destination_session_id,
        "replica": event.replica,
        "previousToken": event.previous_token,
        "newToken": event.new_token,
    }


def list_participant_events(ctx: OperationContext, params: Params) -> dict[str, Any]:
    # The model gives this operation no ResourceNotFoundException: an unknown
    # stage, session or participant has no events.
    stage = ctx.region.stages.get(params["stageArn"])
    session = stage.sessions.get(params["sessionId"]) if stage else None
    participant = session.participants.get(params["participantId"]) if session else None
    numbered = list(enumerate(participant.events)) if participant else []
    chosen, token = page(
        "ListParticipantEvents", ctx.region_name, params, numbered, lambda item: item[0]
    )
    return {"events": [view(event) for _, event in chosen], "nextToken": token}


HANDLERS: dict[str, Callable[[OperationContext, Params], dict[str, Any]]] = {
    "ListParticipantEvents": list_participant_events,
}
MUTATING: frozenset[str] = frozenset()
