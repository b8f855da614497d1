"""The bans' disconnect work, Redis and memory twins alike: queued once, held by one
claimant at a time, each outcome counted once, dropped with its ban."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio

from tests.support.redis_server import redis_cluster
from token_service.infra.redis import build_redis, connect
from token_service.mapping.disconnects import (
    DISCONNECTED,
    FAILED,
    NOT_CONNECTED,
    DisconnectWork,
    Item,
    MemoryDisconnectWork,
    RedisDisconnectWork,
    Tally,
    Target,
)
from token_service.mapping.records import Ban
from token_service.mapping.store import RedisMappingStore

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
LEASE = 30.0


@pytest.fixture
async def work(store_redis_url: str | None) -> AsyncIterator[DisconnectWork]:
    if store_redis_url is None:
        yield MemoryDisconnectWork()
        return
    client = redis.asyncio.Redis.from_url(store_redis_url, socket_timeout=2)
    try:
        yield RedisDisconnectWork(client)
    finally:
        await client.aclose()


def targets(*ids: str) -> list[Target]:
    return [Target(pid, STAGE) for pid in ids]


async def claim_all(work: DisconnectWork, lease: float = LEASE) -> list[Item]:
    items = []
    while (claim := await work.claim(lease)).item is not None:
        items.append(claim.item)
    return items


async def test_a_ban_queues_each_live_participant_and_tallies_them_pending(
    work: DisconnectWork,
) -> None:
    tally = await work.add("ban_1", targets("p1", "p2", "p3"), expire_at=None)
    assert tally == Tally(total=3)
    assert (tally.pending, tally.status) == (3, "pending")
    assert await work.outcomes("ban_1") == {"p1": "pending", "p2": "pending", "p3": "pending"}


async def test_a_ban_without_live_participants_is_done_at_once(work: DisconnectWork) -> None:
    tally = await work.add("ban_1", [], expire_at=None)
    assert (tally.total, tally.status) == (0, "done")
    assert await work.tally("ban_1") == Tally()


async def test_a_retried_ban_queues_only_the_participants_the_first_missed(
    work: DisconnectWork,
) -> None:
    await work.add("ban_1", targets("p1", "p2"), expire_at=None)
    tally = await work.add("ban_1", targets("p1", "p2", "p3"), expire_at=None)
    assert tally.total == 3
    assert sorted(i.participant_id for i in await claim_all(work)) == ["p1", "p2", "p3"]


async def test_a_claimed_item_is_nobody_elses_while_its_lease_lasts(
    work: DisconnectWork,
) -> None:
    await work.add("ban_1", targets("p1"), expire_at=None)
    first = await work.claim(LEASE)
    second = await work.claim(LEASE)
    assert first.item is not None
    assert (first.item.participant_id, first.item.stage_arn) == ("p1", STAGE)
    assert second.item is None
    assert second.queued == 1
    assert second.next_due_seconds is not None
    assert second.next_due_seconds > LEASE / 2


async def test_an_item_whose_holder_went_silent_is_claimed_again_and_the_holder_loses_it(
    work: DisconnectWork,
) -> None:
    await work.add("ban_1", targets("p1"), expire_at=None)
    lost = (await work.claim(0.05)).item
    await asyncio.sleep(0.2)
    taken = (await work.claim(LEASE)).item
    assert lost is not None
    assert taken is not None
    assert taken.participant_id == "p1"
    assert taken.attempts == 2
    assert not await work.finish(lost, DISCONNECTED)
    assert not await work.retry(lost, 0)
    assert await work.finish(taken, NOT_CONNECTED)
    assert await work.tally("ban_1") == Tally(total=1, not_connected=1)


async def test_each_outcome_is_counted_once_and_the_ban_is_done_when_none_is_pending(
    work: DisconnectWork,
) -> None:
    await work.add("ban_1", targets("p1", "p2", "p3"), expire_at=None)
    p1, p2, p3 = sorted(await claim_all(work), key=lambda i: i.participant_id)
    assert await work.finish(p1, DISCONNECTED)
    assert not await work.finish(p1, DISCONNECTED)
    assert await work.finish(p2, NOT_CONNECTED)
    assert (await work.tally("ban_1") or Tally()).status == "pending"
    assert await work.finish(p3, DISCONNECTED)
    tally = await work.tally("ban_1")
    assert tally == Tally(total=3, disconnected=2, not_connected=1)
    assert tally is not None
    assert tally.status == "done"
    assert await work.outcomes("ban_1") == {
        "p1": "disconnected",
        "p2": "not-connected",
        "p3": "disconnected",
    }
    assert (await work.claim(LEASE)).queued == 0


async def test_a_ban_with_a_failure_ends_partial(work: DisconnectWork) -> None:
    await work.add("ban_1", targets("p1"), expire_at=None)
    (item,) = await claim_all(work)
    await work.finish(item, FAILED)
    tally = await work.tally("ban_1")
    assert tally is not None
    assert (tally.status, tally.failed) == ("partial", 1)


async def test_an_item_given_back_is_due_again_after_its_delay_not_before(
    work: DisconnectWork,
) -> None:
    await work.add("ban_1", targets("p1"), expire_at=None)
    (item,) = await claim_all(work)
    assert await work.retry(item, 60)
    later = await work.claim(LEASE)
    assert later.item is None
    assert later.next_due_seconds is not None
    assert later.next_due_seconds > 30
    assert not await work.retry(item, 0)  # given back already: no longer held


async def test_an_item_given_back_at_once_is_claimed_again_with_its_attempts(
    work: DisconnectWork,
) -> None:
    await work.add("ban_1", targets("p1"), expire_at=None)
    (item,) = await claim_all(work)
    assert await work.retry(item, 0)
    (again,) = await claim_all(work)
    assert (again.participant_id, again.attempts) == ("p1", 2)


async def test_lifting_a_ban_drops_its_pending_items_and_its_tally(work: DisconnectWork) -> None:
    await work.add("ban_1", targets("p1", "p2"), expire_at=None)
    await work.add("ban_2", targets("q1"), expire_at=None)
    assert await work.forget("ban_1") == 2
    assert await work.tally("ban_1") is None
    assert [(i.ban_id, i.participant_id) for i in await claim_all(work)] == [("ban_2", "q1")]


async def test_an_item_of_a_lifted_ban_held_meanwhile_is_no_longer_counted(
    work: DisconnectWork,
) -> None:
    await work.add("ban_1", targets("p1"), expire_at=None)
    (item,) = await claim_all(work)
    await work.forget("ban_1")
    assert not await work.finish(item, DISCONNECTED)
    assert await work.tally("ban_1") is None


async def test_a_ban_never_tallied_has_no_tally(work: DisconnectWork) -> None:
    assert await work.tally("ban_old") is None
    assert await work.tallies(["ban_old"]) == [None]
    assert await work.outcomes("ban_old") == {}


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with redis_cluster() as url:
        yield url


async def test_the_work_and_the_idempotent_ban_run_on_redis_cluster_too(cluster_url: str) -> None:
    """Every script declares its keys, all under the `{ts}` hash tag: one slot."""
    client = build_redis(cluster_url, timeout_seconds=2)
    try:
        await connect(client)
        await client.flushdb(target_nodes=client.ALL_NODES)
        store = RedisMappingStore(client, retention_seconds=3600)
        ban = Ban(id="ban_1", user_id="u", reason="r", created_at=1, created_by="a")
        assert await store.add_ban(ban) == ban
        assert (
            await store.add_ban(
                Ban(id="ban_2", user_id="u", reason="r", created_at=2, created_by="a")
            )
            == ban
        )
        work = RedisDisconnectWork(client)
        await work.add("ban_1", targets("p1", "p2"), expire_at=None)
        first, second = await claim_all(work)
        assert await work.finish(first, DISCONNECTED)
        assert await work.retry(second, 0)
        assert await work.tally("ban_1") == Tally(total=2, disconnected=1)
        assert await work.forget("ban_1") == 1
        assert await work.tallies(["ban_1"]) == [None]
    finally:
        await client.aclose()
