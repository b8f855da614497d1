"""IVS stage events in: EventBridge "IVS Stage Update" events attached to mapping records.

Delivery is best effort: events can be late, duplicated or out of order. Each is
stored under its EventBridge id (a duplicate is recorded once) and records list
their events by event time, whatever the order they arrived in.
"""

from __future__ import annotations

import logging

import msgspec

from token_service.errors import FieldError, InvalidRequest
from token_service.mapping.records import StageEvent
from token_service.mapping.store import MappingStore

log = logging.getLogger(__name__)

DETAIL_TYPE = "IVS Stage Update"
SOURCE = "aws.ivs"


class EventDetail(msgspec.Struct, kw_only=True):
    event_name: str
    participant_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None


class StageUpdateEvent(msgspec.Struct, kw_only=True, rename={"detail_type": "detail-type"}):
    id: str
    detail_type: str
    source: str
    time: str
    resources: list[str] = msgspec.field(default_factory=list)
    detail: EventDetail


_decoder = msgspec.json.Decoder(StageUpdateEvent)


def parse_event(body: bytes) -> StageUpdateEvent:
    try:
        return _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidRequest("not an EventBridge event", [FieldError("body", str(exc))]) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise InvalidRequest("the body is not JSON", [FieldError("body", "malformed")]) from None


async def ingest(store: MappingStore, event: StageUpdateEvent) -> str:
    """Attach the event to its participant's record; say what happened to it."""
    if event.source != SOURCE or event.detail_type != DETAIL_TYPE:
        return "ignored"
    participant_id = event.detail.participant_id
    if not participant_id:
        return "ignored"
    view = await store.get(participant_id)
    if view is None:
        log.info("IVS event for an unknown participant", extra={"eventId": event.id})
        return "unknown-participant"
    if event.resources and view.record.stage_arn not in event.resources:
        log.warning("IVS event names another stage than the record", extra={"eventId": event.id})
        return "ignored"
    stored = await store.add_event(
        participant_id,
        StageEvent(
            id=event.id,
            name=event.detail.event_name,
            at=event.time,
            session_id=event.detail.session_id,
        ),
    )
    return "attached" if stored else "duplicate"
