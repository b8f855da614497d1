"""A participant's changes (exchanges, admin PUBLISH changes) are compare-and-set, in both
stores: written only over the version they were decided on, record, history entry and
override in one step, so two changes decided on one state never leave a mix of both."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import msgspec
import pytest
import redis.asyncio

from token_service.mapping.records import (
    JSON_ENCODER,
    CapabilityChange,
    CapabilityOverride,
    Disconnect,
    MappingRecord,
    side_key,
)
from token_service.mapping.store import (
    ChangeResult,
    MappingStore,
    MemoryMappingStore,
    RedisMappingStore,
)

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
RETENTION = 3600
NOW = int(time.time())


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


@pytest.fixture
async def redis_store(
    clean_redis: str,
) -> AsyncIterator[tuple[RedisMappingStore, redis.asyncio.Redis]]:
    client = redis.asyncio.Redis.from_url(clean_redis, socket_timeout=2)
    try:
        yield RedisMappingStore(client, retention_seconds=RETENTION), client
    finally:
        await client.aclose()


def first_issue(pid: str = "p1") -> MappingRecord:
    return MappingRecord(
        participant_id=pid,
        app_user_id="alice",
        token_user_id="alice",
        issuer=None,
        stage_arn=STAGE,
        capabilities=["SUBSCRIBE"],
        issued_at=NOW,
        expires_at=NOW + 3600,
        signer="local",
    )


def changed(capabilities: list[str], *, at: int = NOW, pid: str = "p1") -> MappingRecord:
    return msgspec.structs.replace(
        first_issue(pid), capabilities=capabilities, issued_at=at, expires_at=at + 3600
    )


def change(capabilities: list[str], *, at: int = NOW, by: str = "exchange") -> CapabilityChange:
    return CapabilityChange(at=at, capabilities=capabilities, by=by, expires_at=at + 3600)


def grant(publish: bool) -> CapabilityOverride:
    return CapabilityOverride(publish=publish, at=NOW, by="admin:a")


async def test_a_participant_never_changed_is_at_version_0(store: MappingStore) -> None:
    await store.record(first_issue())

    view = await store.get("p1")

    assert view is not None
    assert view.version == 0


async def test_a_change_over_the_version_read_is_written_and_makes_the_next(
    store: MappingStore,
) -> None:
    await store.record(first_issue())

    result = await store.exchange(
        changed(["PUBLISH", "SUBSCRIBE"]), change(["PUBLISH", "SUBSCRIBE"]), version=0
    )

    view = await store.get("p1")
    assert result is ChangeResult.WRITTEN
    assert view is not None
    assert view.version == 1
    assert view.record.capabilities == ["PUBLISH", "SUBSCRIBE"]
    assert [(c.version, c.capabilities) for c in view.history] == [(1, ["PUBLISH", "SUBSCRIBE"])]


async def test_of_two_changes_decided_on_one_version_only_the_first_is_written(
    store: MappingStore,
) -> None:
    await store.record(first_issue())

    promoted = await store.exchange(
        changed(["PUBLISH", "SUBSCRIBE"]),
        change(["PUBLISH", "SUBSCRIBE"], by="admin:a"),
        version=0,
        override=grant(True),
    )
    demoted = await store.exchange(
        changed(["SUBSCRIBE"]),
        change(["SUBSCRIBE"], by="admin:b"),
        version=0,
        override=grant(False),
    )

    view = await store.get("p1")
    assert (promoted, demoted) == (ChangeResult.WRITTEN, ChangeResult.CONFLICT)
    assert view is not None
    assert view.override == grant(True)
    assert view.record.capabilities == ["PUBLISH", "SUBSCRIBE"]
    assert [c.by for c in view.history] == ["admin:a"]
    assert view.version == 1


async def test_the_loser_decided_again_on_the_new_version_is_written(store: MappingStore) -> None:
    await store.record(first_issue())
    await store.exchange(
        changed(["PUBLISH", "SUBSCRIBE"]), change(["PUBLISH", "SUBSCRIBE"]), version=0
    )

    result = await store.exchange(
        changed(["SUBSCRIBE"]),
        change(["SUBSCRIBE"], by="admin:b"),
        version=1,
        override=grant(False),
    )

    view = await store.get("p1")
    assert result is ChangeResult.WRITTEN
    assert view is not None
    assert view.override == grant(False)
    assert view.record.capabilities == ["SUBSCRIBE"]
    assert [c.version for c in view.history] == [1, 2]


async def test_a_change_without_an_override_keeps_the_stored_one(store: MappingStore) -> None:
    await store.record(first_issue())
    await store.exchange(
        changed(["PUBLISH", "SUBSCRIBE"]),
        change(["PUBLISH", "SUBSCRIBE"], by="admin:a"),
        version=0,
        override=grant(True),
    )

    await store.exchange(
        changed(["PUBLISH", "SUBSCRIBE"]), change(["PUBLISH", "SUBSCRIBE"]), version=1
    )

    view = await store.get("p1")
    assert view is not None
    assert view.override == grant(True)


async def test_a_change_of_an_unknown_participant_writes_nothing(store: MappingStore) -> None:
    result = await store.exchange(changed(["SUBSCRIBE"]), change(["SUBSCRIBE"]), version=0)

    assert result is ChangeResult.GONE
    assert await store.get("p1") is None


async def test_a_participant_disconnected_since_it_was_read_is_not_changed(
    store: MappingStore,
) -> None:
    """An exchange that read the participant before a moderator's disconnect must not write a
    change (and so get a token) after it."""
    await store.record(first_issue())
    read = await store.get("p1")
    assert read is not None
    await store.mark_disconnected("p1", Disconnect(at=NOW, by="admin:a", reason="spam"))

    result = await store.exchange(
        changed(["PUBLISH", "SUBSCRIBE"]),
        change(["PUBLISH", "SUBSCRIBE"]),
        version=read.version,
        override=grant(True),
    )

    view = await store.get("p1")
    assert result is ChangeResult.DISCONNECTED
    assert view is not None
    assert view.record.capabilities == ["SUBSCRIBE"]
    assert view.history == ()
    assert view.override is None


async def test_the_history_is_in_the_order_written_whatever_the_clocks_said(
    store: MappingStore,
) -> None:
    """Two replicas' clocks may disagree by a second or more: the version orders the history,
    and the last entry is the stored state."""
    await store.record(first_issue())
    await store.exchange(
        changed(["PUBLISH", "SUBSCRIBE"], at=NOW + 5),
        change(["PUBLISH", "SUBSCRIBE"], at=NOW + 5),
        version=0,
    )
    await store.exchange(changed(["SUBSCRIBE"], at=NOW), change(["SUBSCRIBE"], at=NOW), version=1)

    view = await store.get("p1")

    assert view is not None
    assert [c.capabilities for c in view.history] == [["PUBLISH", "SUBSCRIBE"], ["SUBSCRIBE"]]
    assert view.history[-1].capabilities == view.record.capabilities


async def test_a_participant_changed_before_versions_were_kept_reads_as_version_0(
    redis_store: tuple[RedisMappingStore, redis.asyncio.Redis],
) -> None:
    """What the previous release left in Redis: history entries without a version, an
    override, no `v` field. It reads, and the next change is written over version 0 and
    comes after the old entries."""
    store, client = redis_store
    await store.record(first_issue())
    old_change = b'{"at":%d,"capabilities":["PUBLISH","SUBSCRIBE"],"by":"admin:a","expires_at":%d}'
    await client.hset(
        side_key("p1"),
        mapping={
            f"c:{(NOW + 9) * 1000:013d}:abcd1234": old_change % (NOW + 9, NOW + 3609),
            "o": JSON_ENCODER.encode(grant(True)),
        },
    )

    before = await store.get("p1")
    result = await store.exchange(
        changed(["PUBLISH", "SUBSCRIBE"]), change(["PUBLISH", "SUBSCRIBE"]), version=0
    )
    after = await store.get("p1")

    assert before is not None
    assert before.version == 0
    assert [(c.by, c.version) for c in before.history] == [("admin:a", 0)]
    assert before.override == grant(True)
    assert result is ChangeResult.WRITTEN
    assert after is not None
    assert [(c.by, c.version) for c in after.history] == [("admin:a", 0), ("exchange", 1)]
    assert after.override == grant(True)


async def test_the_first_issue_written_again_does_not_undo_a_change(store: MappingStore) -> None:
    """The outbox writes a record again when Redis ran the issuing script but its answer was
    lost (a timeout); by then the participant may have been exchanged. The replay must not
    bring back the first issue's capabilities under a history that says otherwise."""
    await store.record(first_issue())
    await store.exchange(
        changed(["PUBLISH", "SUBSCRIBE"]),
        change(["PUBLISH", "SUBSCRIBE"], by="admin:a"),
        version=0,
        override=grant(True),
    )

    await store.record(first_issue())

    view = await store.get("p1")
    assert view is not None
    assert view.record.capabilities == ["PUBLISH", "SUBSCRIBE"]
    assert view.version == 1
    assert view.override == grant(True)
