"""Every replica's share of the bans' disconnects: claim an item, disconnect, record.

A few loops per replica claim items of the shared work (`mapping.disconnects`), one at a
time each. Each call takes a slot of the DisconnectParticipant budget the replicas share
(the IVS adapter's pacer), so however many replicas work, IVS sees at most the budget's
rate. An item IVS could not do now (throttled, failing, unreachable, no slot soon enough)
is given back with a growing delay and tried again, by whichever replica claims it next;
one IVS refuses for good (a bad request), or that keeps failing for a day, is `failed`.
IVS answering "not connected" is an outcome too: the participant had left, or never joined.

A replica that dies holding an item loses it when the lease ends, and another takes it.
Each call is bounded well inside the lease, so a live holder never outlasts its claim.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from token_service.errors import Conflict, DomainError, InvalidRequest, NotFound, ServiceUnavailable
from token_service.infra.background import Spawn, cancel_all, native_spawner
from token_service.mapping.disconnects import (
    CANCELLED,
    DISCONNECTED,
    FAILED,
    NOT_CONNECTED,
    Claim,
    DisconnectWork,
    Item,
)
from token_service.mapping.moderation import Disconnector, audit_disconnected, ivs_reason
from token_service.mapping.records import Disconnect
from token_service.mapping.store import MappingStore

log = logging.getLogger(__name__)

#: Items worked on at once per replica: with IVS slow to answer, one at a time would fall
#: below the budget's rate; the budget, not this, bounds the calls.
CONCURRENCY = 4
#: How often an idle replica looks for work another replica queued (one of its loops
#: does; the others wait to be woken, or ten times as long).
POLL_SECONDS = 2.0
_FOLLOWER_POLLS = 10
#: Between a call's end and its lease's: room for recording the outcome.
LEASE_MARGIN_SECONDS = 5.0
#: Retries back off from this, doubling, up to the maximum.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
#: An item IVS keeps failing for this long is given up (`failed`).
GIVE_UP_SECONDS = 24 * 3600
#: After Redis failed to hand out or take back work.
STORE_ERROR_PAUSE_SECONDS = 2.0


def _backoff(attempts: int, retry_after: float | None) -> float:
    cap = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(attempts - 1, 16))
    # Not for security: spreads the retries of many items (and replicas) apart.
    delay = random.uniform(cap / 2, cap)  # noqa: S311
    return max(delay, retry_after or 0.0)


class DisconnectWorker:
    def __init__(
        self,
        work: DisconnectWork,
        store: MappingStore,
        ivs: Disconnector,
        *,
        lease_seconds: float,
        concurrency: int = CONCURRENCY,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.time,
        on_outcome: Callable[[str], None] | None = None,
        on_queued: Callable[[int], None] | None = None,
    ) -> None:
        if lease_seconds <= LEASE_MARGIN_SECONDS:
            raise ValueError(f"the lease must be longer than {LEASE_MARGIN_SECONDS} s")
        self._work = work
        self._store = store
        self._ivs = ivs
        self._lease = lease_seconds
        self._concurrency = concurrency
        self._poll = poll_seconds
        self._clock = clock
        #: Each item's end: disconnected, not_connected, failed, cancelled, or retried.
        self._on_outcome = on_outcome
        #: Items queued (every replica's), as last seen.
        self._on_queued = on_queued
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, spawn: Spawn | None = None) -> None:
        run = spawn or native_spawner(self._tasks)
        for n in range(self._concurrency):
            run(self._run(leader=n == 0))

    async def close(self) -> None:
        await cancel_all(self._tasks)

    def wake(self) -> None:
        """Work was queued here: start on it now rather than at the next poll."""
        self._wakeup.set()

    async def _run(self, *, leader: bool) -> None:
        while True:
            try:
                claim = await self.step()
            except Exception as exc:  # noqa: BLE001 - Redis away: the work waits there
                log.warning(
                    "ban disconnect work failed (%s); an item held is retried when its lease ends",
                    exc.__class__.__name__,
                    extra={"event": "ban_disconnect_error"},
                )
                await asyncio.sleep(STORE_ERROR_PAUSE_SECONDS)
                continue
            if claim.item is None:
                await self._idle(claim.next_due_seconds, leader=leader)
            else:
                # Where there was one item there are likely more: the idle loops start too.
                self._wakeup.set()

    async def step(self) -> Claim:
        """Claim one item that is due and see it through (done, given back, or given up);
        the claim says what was found. Raises when the store fails."""
        claim = await self._work.claim(self._lease)
        if self._on_queued is not None:
            self._on_queued(claim.queued)
        if claim.item is not None:
            await self._process(claim.item)
        return claim

    async def _idle(self, next_due: float | None, *, leader: bool) -> None:
        poll = self._poll if leader else self._poll * _FOLLOWER_POLLS
        wait = poll if next_due is None else min(poll, max(next_due, 0.01))
        self._wakeup.clear()
        try:
            async with asyncio.timeout(wait):
                await self._wakeup.wait()
        except TimeoutError:
            pass

    async def _process(self, item: Item) -> None:
        ban = await self._store.get_ban(item.ban_id)
        if ban is None or not ban.active(self._clock()):
            await self._finish(item, CANCELLED)
            return
        reason = f"banned: {ban.reason}"
        try:
            # Inside the lease: a holder that outlasted it could meet a second holder.
            async with asyncio.timeout(self._lease - LEASE_MARGIN_SECONDS):
                await self._ivs.disconnect_participant(
                    item.stage_arn, item.participant_id, ivs_reason(reason)
                )
            outcome = DISCONNECTED
        except NotFound:
            outcome = NOT_CONNECTED
        except (InvalidRequest, Conflict) as exc:
            log.error(  # noqa: TRY400 - the detail is the story, no traceback needed
                "IVS refused to disconnect participant %s of ban %s: %s",
                item.participant_id,
                item.ban_id,
                exc.detail,
                extra={"event": "ban_disconnect_failed", "banId": item.ban_id},
            )
            await self._finish(item, FAILED)
            return
        except (DomainError, TimeoutError) as exc:
            await self._again(item, exc)
            return
        disconnect = Disconnect(at=int(self._clock()), by=ban.created_by, reason=reason)
        await self._store.mark_disconnected(item.participant_id, disconnect)
        audit_disconnected(
            item.participant_id,
            item.stage_arn,
            by=ban.created_by,
            ivs_result=outcome,
            ban_id=ban.id,
        )
        await self._finish(item, outcome)

    async def _again(self, item: Item, exc: Exception) -> None:
        """IVS could not do it now: back with a growing delay, or given up after a day."""
        if self._clock() - item.queued_at > GIVE_UP_SECONDS:
            log.error(
                "gave up disconnecting participant %s of ban %s after %d attempts (%s)",
                item.participant_id,
                item.ban_id,
                item.attempts,
                exc.__class__.__name__,
                extra={"event": "ban_disconnect_failed", "banId": item.ban_id},
            )
            await self._finish(item, FAILED)
            return
        retry_after = exc.retry_after if isinstance(exc, ServiceUnavailable) else None
        delay = _backoff(item.attempts, retry_after)
        log.info(
            "disconnecting participant %s of ban %s failed (%s); retrying in %.1f s",
            item.participant_id,
            item.ban_id,
            exc.__class__.__name__,
            delay,
            extra={"event": "ban_disconnect_retry", "banId": item.ban_id},
        )
        if await self._work.retry(item, delay):
            self._count("retried")

    async def _finish(self, item: Item, outcome: str) -> None:
        if await self._work.finish(item, outcome):
            self._count(outcome.replace("-", "_"))
        else:
            # The ban was lifted meanwhile (its work dropped), or the lease ended and another
            # replica holds the item now: its outcome is that replica's to record.
            log.info(
                "participant %s of ban %s was no longer held when done",
                item.participant_id,
                item.ban_id,
                extra={"event": "ban_disconnect_not_held", "banId": item.ban_id},
            )

    def _count(self, outcome: str) -> None:
        if self._on_outcome is not None:
            self._on_outcome(outcome)
