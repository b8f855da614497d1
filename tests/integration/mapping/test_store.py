"""The mapping store: the Redis store and its in-memory twin obey one contract."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import msgspec
import pytest
import redis.asyncio

from token_service.mapping.records import (
    ANY_ISSUER,
    Ban,
    Disconnect,
    MappingRecord,
    StageEvent,
    record_key,
    user_index_key,
)
from token_service.mapping.store import MappingStore, MemoryMappingStore, RedisMappingStore

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
OTHER_STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/ZyXwVu987654"
RETENTION = 3600
ISSUER = "https://idp.example"


@pytest.fixture
async def store(store_redis_url: str | None) -> AsyncIterator[MappingStore]:
    if store_redis_url is None:
        yield MemoryMappingStore(retention_seconds=RETENTION)
        return
    client = redis.asyncio.Redis.from_url(store_redis_url, socket_timeout=2)
    try:
        yield RedisMappingStore(client, retention_seconds=RETENTION)
    finally:
        await client.aclose()


def record(
    pid: str,
    *,
    user: str = "alice",
    stage: str = STAGE,
    issued: int | None = None,
    issuer: str | None = ISSUER,
) -> MappingRecord:
    issued_at = issued if issued is not None else int(time.time())
    return MappingRecord(
        participant_id=pid,
        app_user_id=user,
        token_user_id=user,
        issuer=issuer,
        stage_arn=stage,
        capabilities=["SUBSCRIBE"],
        attributes={"displayName": "Alice"},
        issued_at=issued_at,
        expires_at=issued_at + 3600,
        signer="local",
        key_arn="arn:aws:ivs:us-east-1:123456789012:public-key/k1",
        request_id="req-1",
        client_ip="192.0.2.1",
        user_agent="test",
    )


async def test_a_record_reads_back_by_participant_id(store: MappingStore) -> None:
    await store.record(record("p1"))
    view = await store.get("p1")
    assert view is not None
    assert view.record == record("p1", issued=view.record.issued_at)
    assert view.disconnect is None
    assert view.events == ()


async def test_an_unknown_participant_reads_as_none(store: MappingStore) -> None:
    assert await store.get("nope") is None


async def test_a_users_participants_come_newest_first_in_exact_pages(store: MappingStore) -> None:
    base = int(time.time()) - 100
    for i in range(5):
        await store.record(record(f"p{i}", issued=base + i))
    await store.record(record("bob-1", user="bob", issued=base))
    first = await store.by_user("alice", issuer=ISSUER, limit=2, cursor=None)
    assert [v.record.participant_id for v in first.items] == ["p4", "p3"]
    second = await store.by_user("alice", issuer=ISSUER, limit=2, cursor=first.next_cursor)
    assert [v.record.participant_id for v in second.items] == ["p2", "p1"]
    last = await store.by_user("alice", issuer=ISSUER, limit=2, cursor=second.next_cursor)
    assert [v.record.participant_id for v in last.items] == ["p0"]
    assert last.next_cursor is None


async def test_records_issued_in_the_same_second_are_all_listed_once(store: MappingStore) -> None:
    now = int(time.time())
    for i in range(4):
        await store.record(record(f"same{i}", issued=now))
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.by_user("alice", issuer=ISSUER, limit=1, cursor=cursor)
        seen += [v.record.participant_id for v in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == ["same0", "same1", "same2", "same3"]


async def test_a_users_participants_are_those_of_the_user_id_from_that_issuer_only(
    store: MappingStore,
) -> None:
    now = int(time.time())
    await store.record(record("from-idp", issued=now))
    await store.record(record("no-issuer", issued=now, issuer=None))
    await store.record(record("elsewhere", issued=now, issuer="https://other.example"))

    async def listed(issuer: str | None) -> list[str]:
        page = await store.by_user("alice", issuer=issuer, limit=10, cursor=None)
        return [v.record.participant_id for v in page.items]

    assert await listed(ISSUER) == ["from-idp"]
    assert await listed(None) == ["no-issuer"]
    assert await listed("") == ["no-issuer"]
    assert await listed("https://unknown.example") == []


async def test_the_user_id_from_every_issuer_comes_newest_first_in_exact_pages(
    store: MappingStore,
) -> None:
    base = int(time.time()) - 100
    issuers = [ISSUER, None, "https://other.example"]
    for i in range(7):
        await store.record(record(f"p{i}", issued=base + i, issuer=issuers[i % 3]))
    await store.record(record("bob-1", user="bob", issued=base + 50))
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.by_user("alice", issuer=ANY_ISSUER, limit=3, cursor=cursor)
        seen += [v.record.participant_id for v in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"p{i}" for i in reversed(range(7))]


async def test_a_stages_participants_can_be_listed_since_a_time(store: MappingStore) -> None:
    base = int(time.time()) - 100
    await store.record(record("old", issued=base))
    await store.record(record("new", issued=base + 50))
    await store.record(record("elsewhere", stage=OTHER_STAGE, issued=base + 60))
    page = await store.by_stage(STAGE, since=base + 10, limit=10, cursor=None)
    assert [v.record.participant_id for v in page.items] == ["new"]
    everything = await store.by_stage(STAGE, since=None, limit=10, cursor=None)
    assert [v.record.participant_id for v in everything.items] == ["new", "old"]


async def test_a_disconnect_is_kept_with_who_when_and_why(store: MappingStore) -> None:
    await store.record(record("p1"))
    marked = await store.mark_disconnected("p1", Disconnect(at=123, by="admin:x", reason="spam"))
    view = await store.get("p1")
    assert marked
    assert view is not None
    assert view.disconnect == Disconnect(at=123, by="admin:x", reason="spam")


async def test_a_disconnect_of_an_unknown_participant_writes_nothing(store: MappingStore) -> None:
    assert not await store.mark_disconnected("ghost", Disconnect(at=1, by="a", reason="r"))
    assert await store.get("ghost") is None


async def test_events_list_in_event_time_order_whatever_the_arrival(store: MappingStore) -> None:
    await store.record(record("p1"))
    late = StageEvent(id="e2", name="Participant Unpublished", at="2026-11-28T10:05:00Z")
    early = StageEvent(id="e1", name="Participant Published", at="2026-11-28T10:00:00Z")
    await store.add_event("p1", late)
    await store.add_event("p1", early)
    view = await store.get("p1")
    assert view is not None
    assert [e.id for e in view.events] == ["e1", "e2"]


async def test_a_duplicate_event_is_recorded_once(store: MappingStore) -> None:
    await store.record(record("p1"))
    event = StageEvent(id="e1", name="Participant Published", at="2026-11-28T10:00:00Z")
    assert await store.add_event("p1", event)
    assert not await store.add_event("p1", event)
    view = await store.get("p1")
    assert view is not None
    assert len(view.events) == 1


async def test_bans_are_listed_newest_first_and_can_be_lifted(store: MappingStore) -> None:
    first = Ban(id="b1", user_id="u", reason="r", created_at=1, created_by="a")
    second = Ban(id="b2", user_id="v", stage_arn=STAGE, reason="r", created_at=2, created_by="a")
    await store.add_ban(first)
    await store.add_ban(second)
    assert [b.id for b in await store.bans()] == ["b2", "b1"]
    assert await store.remove_ban("b1") == first
    assert [b.id for b in await store.bans()] == ["b2"]
    assert await store.remove_ban("b1") is None


async def test_an_expired_ban_is_no_longer_listed(store: MappingStore) -> None:
    ban = Ban(
        id="b1", user_id="u", until=int(time.time()) - 1, reason="r", created_at=1, created_by="a"
    )
    await store.add_ban(ban)
    assert await store.bans() == []


async def test_records_expire_after_their_token_plus_the_retention(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2)
    try:
        await client.flushdb()
        store = RedisMappingStore(client, retention_seconds=1)
        expired = record("p-exp", issued=int(time.time()) - 3600)  # its token expired just now
        await store.record(expired)
        assert await store.get("p-exp") is not None
        await asyncio.sleep(2.1)
        assert await store.get("p-exp") is None
        assert await client.exists(record_key("p-exp")) == 0
        assert await client.exists(user_index_key(ISSUER, "alice")) == 0
    finally:
        await client.aclose()


async def test_memory_store_forgets_records_after_the_retention() -> None:
    store = MemoryMappingStore(retention_seconds=0)
    await store.record(record("p-old", issued=int(time.time()) - 3600))
    assert await store.get("p-old") is None


async def test_memory_store_is_bounded() -> None:
    store = MemoryMappingStore(retention_seconds=RETENTION, max_records=3)
    for i in range(5):
        await store.record(record(f"p{i}"))
    assert await store.get("p0") is None
    assert await store.get("p4") is not None


BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


async def test_a_record_takes_under_640_bytes_of_redis_memory(redis_url: str) -> None:
    """Measured with MEMORY USAGE over records, indexes and all, with a real browser's
    user agent; docs/mapping-log.md quotes the figure for ten million records."""
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=5)
    try:
        await client.flushdb()
        store = RedisMappingStore(client, retention_seconds=RETENTION)
        count = 2000
        base = int(time.time())
        for i in range(count):
            realistic = msgspec.structs.replace(
                record(f"P{i:021d}", user=f"user-{i % 200}", issued=base + i % 60),
                user_agent=BROWSER,
            )
            await store.record(realistic)
        total = 0
        async for key in client.scan_iter(match="ts:*", count=1000):
            total += await client.memory_usage(key, samples=0) or 0
        per_record = total / count
        print(f"bytes per mapping record in Redis: {per_record:.0f}")
        assert per_record < 640
    finally:
        await client.aclose()


async def test_an_equal_ban_in_force_is_returned_instead_of_stored(store: MappingStore) -> None:
    first = Ban(id="b1", user_id="u", issuer=ISSUER, reason="r", created_at=1, created_by="a")
    retry = Ban(id="b2", user_id="u", issuer=ISSUER, reason="r2", created_at=2, created_by="b")
    assert await store.add_ban(first) == first
    assert await store.add_ban(retry) == first
    assert [b.id for b in await store.bans()] == ["b1"]
    assert await store.get_ban("b2") is None


async def test_a_ban_with_another_end_stage_or_issuer_is_stored_beside_the_one_in_force(
    store: MappingStore,
) -> None:
    until = int(time.time()) + 3600
    first = Ban(id="b1", user_id="u", issuer=ISSUER, reason="r", created_at=1, created_by="a")
    others = [
        Ban(
            id="b2",
            user_id="u",
            issuer=ISSUER,
            until=until,
            reason="r",
            created_at=2,
            created_by="a",
        ),
        Ban(
            id="b3",
            user_id="u",
            issuer=ISSUER,
            stage_arn=STAGE,
            reason="r",
            created_at=3,
            created_by="a",
        ),
        Ban(id="b4", user_id="u", issuer=ANY_ISSUER, reason="r", created_at=4, created_by="a"),
    ]
    await store.add_ban(first)
    for ban in others:
        assert await store.add_ban(ban) == ban
    assert sorted(b.id for b in await store.bans()) == ["b1", "b2", "b3", "b4"]


async def test_a_ban_is_read_back_by_its_id(store: MappingStore) -> None:
    ban = Ban(id="b1", user_id="u", issuer=None, reason="r", created_at=1, created_by="a")
    await store.add_ban(ban)
    assert await store.get_ban("b1") == ban
    assert await store.get_ban("nope") is None
