"""Mapping records as operators see them: the JSON the admin API answers and `token-service
participants ...` prints, one shape for both."""

from __future__ import annotations

import msgspec

from token_service.domain import iso_utc
from token_service.mapping.records import ParticipantView


class DisconnectView(msgspec.Struct, kw_only=True, rename="camel"):
    at: str
    by: str
    reason: str


class EventView(msgspec.Struct, kw_only=True, rename="camel"):
    id: str
    name: str
    at: str
    session_id: str | None = None


class CapabilityChangeView(msgspec.Struct, kw_only=True, rename="camel"):
    at: str
    capabilities: list[str]
    #: "exchange", or the admin ("admin:<token fingerprint>").
    by: str
    expiration_time: str
    #: The participant's version this change made (1, 2, ...); 0 before versions were kept.
    version: int = 0


class ParticipantRecordBody(msgspec.Struct, kw_only=True, rename="camel"):
    """A mapping record: which app user got this participant id, and what became of it."""

    participant_id: str
    app_user_id: str
    token_user_id: str
    issuer: str | None
    stage_arn: str
    capabilities: list[str]
    attributes: dict[str, str]
    issued_at: str
    expiration_time: str
    signer: str
    key_arn: str | None
    request_id: str | None
    client_ip: str | None
    user_agent: str | None
    disconnected: DisconnectView | None
    events: list[EventView]
    #: Token exchanges and admin PUBLISH changes, oldest first.
    capability_history: list[CapabilityChangeView] = msgspec.field(default_factory=list)
    #: An admin's pending PUBLISH grant (true) or revoke (false), applied at each exchange.
    publish_override: bool | None = None
    #: How many changes were written (the last history entry's `version`); 0: none since
    #: versions were kept.
    version: int = 0


class ParticipantPage(msgspec.Struct, kw_only=True, rename="camel"):
    participants: list[ParticipantRecordBody]
    #: Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: str | None


def participant_body(view: ParticipantView) -> ParticipantRecordBody:
    record = view.record
    disconnect = view.disconnect
    return ParticipantRecordBody(
        participant_id=record.participant_id,
        app_user_id=record.app_user_id,
        token_user_id=record.token_user_id,
        issuer=record.issuer,
        stage_arn=record.stage_arn,
        capabilities=record.capabilities,
        attributes=record.attributes,
        issued_at=iso_utc(record.issued_at),
        expiration_time=iso_utc(record.expires_at),
        signer=record.signer,
        key_arn=record.key_arn,
        request_id=record.request_id,
        client_ip=record.client_ip,
        user_agent=record.user_agent,
        disconnected=(
            DisconnectView(at=iso_utc(disconnect.at), by=disconnect.by, reason=disconnect.reason)
            if disconnect
            else None
        ),
        events=[
            EventView(id=e.id, name=e.name, at=e.at, session_id=e.session_id) for e in view.events
        ],
        capability_history=[
            CapabilityChangeView(
                at=iso_utc(c.at),
                capabilities=c.capabilities,
                by=c.by,
                expiration_time=iso_utc(c.expires_at),
                version=c.version,
            )
            for c in view.history
        ],
        publish_override=view.override.publish if view.override else None,
        version=view.version,
    )
