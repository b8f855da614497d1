"""Bans and their disconnects, through `Moderation` and the worker, Redis and memory alike.

IVS is a fake that records each call and answers as told; the worker is driven one item at
a time (`DisconnectWorker.step`), so nothing here waits on a clock except one backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import redis.asyncio

from token_service.errors import DomainError, InvalidRequest, NotFound
from token_service.ivs.client import IvsThrottled
from token_service.mapping.disconnect_worker import DisconnectWorker
from token_service.mapping.disconnects import (
    DisconnectWork,
    MemoryDisconnectWork,
    RedisDisconnectWork,
    Tally,
)
from token_service.mapping.moderation import IVS_REASON_MAX, BanResult, Moderation
from token_service.mapping.records import ANY_ISSUER, MappingRecord
from token_service.mapping.store import MappingStore, MemoryMappingStore, RedisMappingStore

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
OTHER_STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/ZyXwVu987654"
ISSUER = "https://idp.example"


@dataclass
class FakeIvs:
    """DisconnectParticipant: records each call; `answers` (by participant id) raise, once
    each, in order."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)
    answers: dict[str, list[DomainError]] = field(default_factory=dict)

    async def disconnect_participant(
        self, stage_arn: str, participant_id: str, reason: str
    ) -> None:
        self.calls.append((stage_arn, participant_id, reason))
        pending = self.answers.get(participant_id)
        if pending:
            raise pending.pop(0)


@dataclass
class Desk:
    store: MappingStore
    work: DisconnectWork
    ivs: FakeIvs
    moderation: Moderation
    worker: DisconnectWorker
    outcomes: list[str]

    async def drain(self) -> None:
        """Steps until nothing is due."""
        while (await self.worker.step()).item is not None:
            pass


@pytest.fixture
async def desk(store_redis_url: str | None) -> AsyncIterator[Desk]:
    client = None
    store: MappingStore
    work: DisconnectWork
    if store_redis_url is None:
        store, work = MemoryMappingStore(retention_seconds=3600), MemoryDisconnectWork()
    else:
        client = redis.asyncio.Redis.from_url(store_redis_url, socket_timeout=2)
        store, work = RedisMappingStore(client, retention_seconds=3600), RedisDisconnectWork(client)
    ivs = FakeIvs()
    outcomes: list[str] = []
    worker = DisconnectWorker(work, store, ivs, lease_seconds=30, on_outcome=outcomes.append)
    try:
        yield Desk(store, work, ivs, Moderation(store, ivs, work), worker, outcomes)
    finally:
        if client is not None:
            await client.aclose()


async def live(store: MappingStore, *ids: str, user: str = "alice", stage: str = STAGE) -> None:
    now = int(time.time())
    for pid in ids:
        await store.record(
            MappingRecord(
                participant_id=pid,
                app_user_id=user,
                token_user_id=user,
                issuer=ISSUER,
                stage_arn=stage,
                capabilities=["SUBSCRIBE"],
                issued_at=now,
                expires_at=now + 3600,
                signer="local",
            )
        )


async def ban(
    desk: Desk, *, stage: str | None = None, until: int | None = None, reason: str = "r"
) -> BanResult:
    return await desk.moderation.ban(
        user_id="alice", issuer=ISSUER, stage_arn=stage, until=until, reason=reason, by="admin:1"
    )


async def test_a_ban_answers_with_its_live_participants_pending_before_any_ivs_call(
    desk: Desk,
) -> None:
    await live(desk.store, "p1", "p2", "p3")
    result = await ban(desk)
    assert result.created
    assert result.disconnects == Tally(total=3)
    assert desk.ivs.calls == []


async def test_the_worker_disconnects_each_participant_once_and_records_who_and_why(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    await live(desk.store, "p1", "p2", "p3")
    result = await ban(desk, reason="raid")
    with caplog.at_level(logging.INFO, logger="token_service.audit"):
        await desk.drain()
    assert sorted(pid for _, pid, _ in desk.ivs.calls) == ["p1", "p2", "p3"]
    assert {reason for *_, reason in desk.ivs.calls} == {"banned: raid"}
    assert await desk.work.tally(result.ban.id) == Tally(total=3, disconnected=3)
    view = await desk.store.get("p1")
    assert view is not None
    assert view.disconnect is not None
    assert (view.disconnect.by, view.disconnect.reason) == ("admin:1", "banned: raid")
    lines = [r for r in caplog.records if getattr(r, "event", None) == "participant_disconnected"]
    assert {getattr(r, "banId", None) for r in lines} == {result.ban.id}
    assert desk.outcomes == ["disconnected"] * 3


async def test_a_ban_on_one_stage_disconnects_only_that_stages_participants(desk: Desk) -> None:
    await live(desk.store, "here")
    await live(desk.store, "elsewhere", stage=OTHER_STAGE)
    await ban(desk, stage=STAGE)
    await desk.drain()
    assert [pid for _, pid, _ in desk.ivs.calls] == ["here"]


async def test_an_equal_ban_in_force_is_the_answer_and_nothing_is_stored_or_queued_twice(
    desk: Desk,
) -> None:
    await live(desk.store, "p1", "p2")
    first = await ban(desk)
    again = await ban(desk, reason="a retry, reworded")
    assert (first.created, again.created) == (True, False)
    assert again.ban == first.ban
    assert again.disconnects.total == 2
    assert [b.id for b in await desk.store.bans()] == [first.ban.id]
    await desk.drain()
    assert len(desk.ivs.calls) == 2


async def test_a_ban_with_another_end_is_a_new_ban(desk: Desk) -> None:
    first = await ban(desk)
    later = await ban(desk, until=int(time.time()) + 3600)
    assert later.created
    assert later.ban.id != first.ban.id


async def test_a_ban_of_every_issuer_is_not_the_same_as_one_of_a_single_issuer(
    desk: Desk,
) -> None:
    own = await ban(desk)
    every = await desk.moderation.ban(
        user_id="alice", issuer=ANY_ISSUER, stage_arn=None, until=None, reason="r", by="admin:1"
    )
    assert every.created
    assert every.ban.id != own.ban.id


async def test_a_participant_ivs_does_not_know_connected_is_not_connected(desk: Desk) -> None:
    await live(desk.store, "gone")
    desk.ivs.answers["gone"] = [NotFound("not connected")]
    result = await ban(desk)
    await desk.drain()
    assert await desk.work.tally(result.ban.id) == Tally(total=1, not_connected=1)


async def test_a_disconnect_ivs_refuses_for_good_is_failed_and_the_ban_partial(
    desk: Desk,
) -> None:
    await live(desk.store, "bad", "good")
    desk.ivs.answers["bad"] = [InvalidRequest("IVS rejected the request")]
    result = await ban(desk)
    await desk.drain()
    tally = await desk.work.tally(result.ban.id)
    assert tally == Tally(total=2, disconnected=1, failed=1)
    assert tally is not None
    assert tally.status == "partial"


async def test_a_throttled_disconnect_is_given_back_and_done_on_a_later_try(desk: Desk) -> None:
    await live(desk.store, "busy")
    desk.ivs.answers["busy"] = [IvsThrottled("IVS is throttling", retry_after=0.1)]
    result = await ban(desk)
    await desk.drain()
    assert (await desk.work.tally(result.ban.id) or Tally()).pending == 1
    assert desk.outcomes == ["retried"]
    # The first backoff is at most a second.
    await asyncio.sleep(1.1)
    await desk.drain()
    assert await desk.work.tally(result.ban.id) == Tally(total=1, disconnected=1)
    assert len(desk.ivs.calls) == 2


async def test_participants_of_a_ban_that_ended_first_are_cancelled_not_disconnected(
    desk: Desk,
) -> None:
    await live(desk.store, "p1")
    result = await ban(desk, until=int(time.time()) + 3600)
    ended = DisconnectWorker(
        desk.work, desk.store, desk.ivs, lease_seconds=30, clock=lambda: time.time() + 7200
    )
    while (await ended.step()).item is not None:
        pass
    assert desk.ivs.calls == []
    assert await desk.work.tally(result.ban.id) == Tally(total=1, cancelled=1)


async def test_lifting_a_ban_drops_its_disconnects_not_yet_made(desk: Desk) -> None:
    await live(desk.store, "p1", "p2")
    result = await ban(desk)
    await desk.moderation.lift(result.ban.id, by="admin:1")
    await desk.drain()
    assert desk.ivs.calls == []


async def test_a_reason_longer_than_ivs_takes_is_cut_for_ivs_and_kept_whole_in_the_record(
    desk: Desk,
) -> None:
    """IVS refuses a DisconnectParticipant reason over 128 characters; a ban's may be 512."""
    await live(desk.store, "p1")
    await ban(desk, reason="x" * 500)
    await desk.drain()
    (_, _, sent), *_ = desk.ivs.calls
    assert len(sent) == IVS_REASON_MAX
    view = await desk.store.get("p1")
    assert view is not None
    assert view.disconnect is not None
    assert view.disconnect.reason == "banned: " + "x" * 500


async def test_the_ban_status_lists_each_participants_outcome(desk: Desk) -> None:
    await live(desk.store, "p1", "p2")
    desk.ivs.answers["p2"] = [NotFound("not connected")]
    result = await ban(desk)
    await desk.drain()
    status, outcomes = await desk.moderation.ban_status(result.ban.id)
    assert status.ban == result.ban
    assert outcomes == {"p1": "disconnected", "p2": "not-connected"}


async def test_the_status_of_a_ban_not_in_force_is_not_found(desk: Desk) -> None:
    with pytest.raises(NotFound):
        await desk.moderation.ban_status("ban_nope")
