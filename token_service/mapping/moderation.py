"""Acting on participants: disconnect one, ban a user (and disconnect their live ones).

DisconnectParticipant is limited by IVS to 5 calls per second, so calls from this
process are paced; a ban that has to disconnect many participants takes its time
rather than drawing throttling errors. Every action is recorded in the mapping
record (who, when, why) and logged to the audit logger.

A disconnect cannot revoke a self-signed token: a participant that is not
connected (never joined, or already left) can still join with its token until it
expires. A ban stops new tokens; the answer tells the operator which case applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from token_service.errors import FieldError, InvalidRequest, NotFound
from token_service.mapping.records import Ban, Disconnect, ParticipantView
from token_service.mapping.store import MappingStore, live_records, new_ban_id

audit = logging.getLogger("token_service.audit")

#: IVS allows 5 DisconnectParticipant calls per second per account and region.
DISCONNECT_INTERVAL_SECONDS = 0.2
#: A ban looks at this many of the user's newest records for live participants.
BAN_SCAN_LIMIT = 500


class Disconnector(Protocol):
    async def disconnect_participant(
        self, stage_arn: str, participant_id: str, reason: str
    ) -> None: ...


@dataclass(frozen=True)
class DisconnectResult:
    participant: ParticipantView
    #: `disconnected`, or `not-connected` (IVS had no such connected participant).
    ivs_result: str


@dataclass(frozen=True)
class BanResult:
    ban: Ban
    disconnected: tuple[DisconnectResult, ...]


class _Pacer:
    """At most one call per interval from this process, in arrival order."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._lock = asyncio.Lock()
        self._next = 0.0

    async def wait(self) -> None:
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = time.monotonic() + self._interval


class Moderation:
    def __init__(
        self,
        store: MappingStore,
        ivs: Disconnector,
        *,
        on_bans_changed: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.time,
        disconnect_interval: float = DISCONNECT_INTERVAL_SECONDS,
    ) -> None:
        self._store = store
        self._ivs = ivs
        self._on_bans_changed = on_bans_changed
        self._clock = clock
        self._pacer = _Pacer(disconnect_interval)

    async def disconnect(self, participant_id: str, *, by: str, reason: str) -> DisconnectResult:
        view = await self._store.get(participant_id)
        if view is None:
            raise NotFound(f"no mapping record for participant {participant_id}")
        return await self._disconnect(view, by=by, reason=reason)

    async def _disconnect(self, view: ParticipantView, *, by: str, reason: str) -> DisconnectResult:
        record = view.record
        await self._pacer.wait()
        try:
            await self._ivs.disconnect_participant(record.stage_arn, record.participant_id, reason)
            ivs_result = "disconnected"
        except NotFound:
            ivs_result = "not-connected"
        disconnect = Disconnect(at=int(self._clock()), by=by, reason=reason)
        await self._store.mark_disconnected(record.participant_id, disconnect)
        audit.info(
            "participant disconnected",
            extra={
                "event": "participant_disconnected",
                "participantId": record.participant_id,
                "stageArn": record.stage_arn,
                "by": by,
                "ivsResult": ivs_result,
            },
        )
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
        """Ban (issuer, user_id), or the user id from every issuer (`ANY_ISSUER`)."""
        if until is not None and until <= self._clock():
            # Refused rather than stored: Redis refuses a non-positive expiry outright, and
            # a ban that has already ended would only look like one that is in force.
            raise InvalidRequest(
                "until is not in the future", [FieldError("until", "the ban would have ended")]
            )
        ban = Ban(
            id=new_ban_id(),
            user_id=user_id,
            issuer=issuer,
            stage_arn=stage_arn,
            until=until,
            reason=reason,
            created_at=int(self._clock()),
            created_by=by,
        )
        await self._store.add_ban(ban)
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
        page = await self._store.by_user(user_id, issuer=issuer, limit=BAN_SCAN_LIMIT, cursor=None)
        now = self._clock()
        live = {r.participant_id for r in live_records(page.items, now)}
        targets = [
            v
            for v in page.items
            if v.record.participant_id in live
            and (stage_arn is None or v.record.stage_arn == stage_arn)
        ]
        results = [
            await self._disconnect(view, by=by, reason=f"banned: {reason}") for view in targets
        ]
        return BanResult(ban=ban, disconnected=tuple(results))

    async def bans(self) -> list[Ban]:
        return await self._store.bans()

    async def lift(self, ban_id: str, *, by: str) -> Ban:
        ban = await self._store.remove_ban(ban_id)
        if ban is None:
            raise NotFound(f"no ban {ban_id}")
        audit.info(
            "ban lifted",
            extra={
                "event": "ban_lifted",
                "banId": ban_id,
                "appUserId": ban.user_id,
                "issuer": ban.issuer,
                "by": by,
            },
        )
        if self._on_bans_changed is not None:
            self._on_bans_changed()
        return ban
