"""Acting on participants: disconnect one, ban a user (and disconnect their live ones).

IVS allows 5 DisconnectParticipant calls per second per account and region. Every call
takes a slot of one budget the replicas share (`ivs.budget`, named DisconnectParticipant),
so all of them together stay under IVS's rate. A single disconnect is one call, made in
the request. A ban answers at once: it is stored, and its user's live participants are
queued as durable work (`mapping.disconnects`) that every replica's worker takes its
share of (`mapping.disconnect_worker`), retried until done; the ban's tally says how far
it got. Every action is recorded in the mapping record (who, when, why) and logged to the
audit logger.

A disconnect cannot revoke a self-signed token: a participant that is not connected (never
joined, or already left) can still join with its token until it expires. A ban stops new
tokens; the outcomes tell the operator which case applied.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from token_service.errors import FieldError, InvalidRequest, NotFound
from token_service.mapping.disconnects import (
    TALLY_AFTER_END_SECONDS,
    DisconnectWork,
    Tally,
    Target,
)
from token_service.mapping.records import Ban, Disconnect, ParticipantView
from token_service.mapping.store import MappingStore, live_records, new_ban_id

audit = logging.getLogger("token_service.audit")

#: A ban looks at this many of the user's newest records for live participants.
BAN_SCAN_LIMIT = 500
#: DisconnectParticipant's `reason` is at most 128 characters (a ban's may be 512).
IVS_REASON_MAX = 128


class Disconnector(Protocol):
    async def disconnect_participant(
        self, stage_arn: str, participant_id: str, reason: str
    ) -> None: ...


def ivs_reason(reason: str) -> str:
    """`reason` as IVS takes it: longer is a ValidationException, so cut with an ellipsis."""
    if len(reason) <= IVS_REASON_MAX:
        return reason
    return reason[: IVS_REASON_MAX - 1] + "…"


def audit_disconnected(
    participant_id: str, stage_arn: str, *, by: str, ivs_result: str, ban_id: str | None = None
) -> None:
    extra = {
        "event": "participant_disconnected",
        "participantId": participant_id,
        "stageArn": stage_arn,
        "by": by,
        "ivsResult": ivs_result,
    }
    if ban_id is not None:
        extra["banId"] = ban_id
    audit.info("participant disconnected", extra=extra)


@dataclass(frozen=True)
class DisconnectResult:
    participant: ParticipantView
    #: `disconnected`, or `not-connected` (IVS had no such connected participant).
    ivs_result: str


@dataclass(frozen=True)
class BanResult:
    ban: Ban
    #: False: an equal ban was in force already, and this is it (nothing stored).
    created: bool
    disconnects: Tally


@dataclass(frozen=True)
class BanStatus:
    ban: Ban
    #: None for a ban made before disconnects were tallied.
    disconnects: Tally | None


class Moderation:
    def __init__(
        self,
        store: MappingStore,
        ivs: Disconnector,
        work: DisconnectWork,
        *,
        on_bans_changed: Callable[[], object] | None = None,
        on_queued: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._ivs = ivs
        self._work = work
        self._on_bans_changed = on_bans_changed
        #: Told when a ban queued disconnects (this replica's worker starts at once).
        self._on_queued = on_queued
        self._clock = clock

    async def disconnect(self, participant_id: str, *, by: str, reason: str) -> DisconnectResult:
        """One DisconnectParticipant, in the caller's request (a slot of the shared budget
        first: 503 with Retry-After when none comes soon enough)."""
        view = await self._store.get(participant_id)
        if view is None:
            raise NotFound(f"no mapping record for participant {participant_id}")
        record = view.record
        try:
            await self._ivs.disconnect_participant(
                record.stage_arn, record.participant_id, ivs_reason(reason)
            )
            ivs_result = "disconnected"
        except NotFound:
            ivs_result = "not-connected"
        disconnect = Disconnect(at=int(self._clock()), by=by, reason=reason)
        await self._store.mark_disconnected(record.participant_id, disconnect)
        audit_disconnected(record.participant_id, record.stage_arn, by=by, ivs_result=ivs_result)
        updated = await self._store.get(record.participant_id) or view
        return DisconnectResult(participant=updated, ivs_result=ivs_result)

    async def ban(
        self,
        *,
        user_id: str,
        issuer: str | None,
        stage_arn: str | None,
        until: int | None,
        reason: str,
        by: str,
    ) -> BanResult:
        """Ban (issuer, user_id), or the user id from every issuer (`ANY_ISSUER`), and queue
        the disconnects of their live participants.

        Idempotent: while an equal ban (same user, issuer, stage and end) is in force, that
        ban is the answer and nothing new is stored; its live participants not yet queued
        (the first attempt failed after storing the ban) are queued then.
        """
        if until is not None and until <= self._clock():
            # Refused rather than stored: Redis refuses a non-positive expiry outright, and
            # a ban that has already ended would only look like one that is in force.
            raise InvalidRequest(
                "until is not in the future", [FieldError("until", "the ban would have ended")]
            )
        asked = Ban(
            id=new_ban_id(),
            user_id=user_id,
            issuer=issuer,
            stage_arn=stage_arn,
            until=until,
            reason=reason,
            created_at=int(self._clock()),
            created_by=by,
        )
        ban = await self._store.add_ban(asked)
        created = ban.id == asked.id
        if created:
            audit.info(
                "user banned",
                extra={
                    "event": "ban_created",
                    "banId": ban.id,
                    "appUserId": user_id,
                    "issuer": issuer,
                    "stageArn": stage_arn,
                    "by": by,
                },
            )
            if self._on_bans_changed is not None:
                self._on_bans_changed()
        targets = await self._live_targets(ban)
        expire_at = None if ban.until is None else ban.until + TALLY_AFTER_END_SECONDS
        tally = await self._work.add(ban.id, targets, expire_at=expire_at)
        if tally.pending and self._on_queued is not None:
            self._on_queued()
        return BanResult(ban=ban, created=created, disconnects=tally)

    async def _live_targets(self, ban: Ban) -> list[Target]:
        page = await self._store.by_user(
            ban.user_id, issuer=ban.issuer, limit=BAN_SCAN_LIMIT, cursor=None
        )
        live = live_records(page.items, self._clock())
        return [
            Target(r.participant_id, r.stage_arn)
            for r in live
            if ban.stage_arn is None or r.stage_arn == ban.stage_arn
        ]

    async def bans(self) -> list[BanStatus]:
        bans = await self._store.bans()
        tallies = await self._work.tallies([b.id for b in bans])
        return [BanStatus(b, t) for b, t in zip(bans, tallies, strict=True)]

    async def ban_status(self, ban_id: str) -> tuple[BanStatus, dict[str, str]]:
        """The ban in force, its tally and each participant's outcome; 404 otherwise."""
        ban = await self._store.get_ban(ban_id)
        if ban is None or not ban.active(self._clock()):
            raise NotFound(f"no ban {ban_id}")
        return BanStatus(ban, await self._work.tally(ban_id)), await self._work.outcomes(ban_id)

    async def lift(self, ban_id: str, *, by: str) -> Ban:
        ban = await self._store.remove_ban(ban_id)
        if ban is None:
            raise NotFound(f"no ban {ban_id}")
        # The user may come back: their participants not yet disconnected stay connected.
        dropped = await self._work.forget(ban_id)
        audit.info(
            "ban lifted",
            extra={
                "event": "ban_lifted",
                "banId": ban_id,
                "appUserId": ban.user_id,
                "issuer": ban.issuer,
                "by": by,
                "disconnectsCancelled": dropped,
            },
        )
        if self._on_bans_changed is not None:
            self._on_bans_changed()
        return ban
