"""Upgrading the mapping log from 0.1.0: records indexed by the user id alone, and bans
without an issuer, written here as 0.1.0 wrote them, are found after the upgrade.

The old layout is spelled out below rather than taken from the code, which no longer
writes it: the user index `ts:{ts}:u:<hash>` (base64url of the first 16 bytes of the
SHA-256 of the user id), the ban hash entry without `issuer`, and the ban key
`ts:{ts}:ban:u:<hash>`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio

from tests.support.redis_server import redis_cluster
from token_service.admission.gate import RedisGate
from token_service.infra.redis import RedisClient, build_redis, connect
from token_service.mapping.migration import MigrationReport, migrate_user_indexes
from token_service.mapping.records import (
    ANY_ISSUER,
    MappingRecord,
    encode_record,
    user_index_key,
)
from token_service.mapping.store import RedisMappingStore

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
IDP = "https://idp.example"
RETENTION = 3600


def old_user_hash(user_id: str) -> str:
    digest = hashlib.sha256(user_id.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def old_index(user_id: str) -> str:
    return "ts:{ts}:u:" + old_user_hash(user_id)


def record(pid: str, issuer: str | None, *, user: str = "alice", issued: int) -> MappingRecord:
    return MappingRecord(
        participant_id=pid,
        app_user_id=user,
        token_user_id=user,
        issuer=issuer,
        stage_arn=STAGE,
        capabilities=["SUBSCRIBE"],
        issued_at=issued,
        expires_at=issued + 600,
        signer="local",
    )


async def write_as_0_1_0(client: RedisClient, *records: MappingRecord) -> None:
    """What 0.1.0's issuance script wrote: the record, the stage index, and the user index
    keyed by the user id alone."""
    for r in records:
        expire_at = r.expires_at + RETENTION
        member = f"{r.issued_at * 1000:013d}:{r.participant_id}"
        await client.set(f"ts:{{ts}}:p:{r.participant_id}", encode_record(r), exat=expire_at)
        for index in (old_index(r.app_user_id), f"ts:{{ts}}:s:{r.stage_arn}"):
            await client.zadd(index, {member: 0})
            await client.expireat(index, expire_at)


async def listed(store: RedisMappingStore, issuer: str | None, user: str = "alice") -> list[str]:
    page = await store.by_user(user, issuer=issuer, limit=50, cursor=None)
    return [v.record.participant_id for v in page.items]


@pytest.fixture
async def client(clean_redis: str) -> AsyncIterator[redis.asyncio.Redis]:
    connection = redis.asyncio.Redis.from_url(clean_redis, socket_timeout=2)
    try:
        yield connection
    finally:
        await connection.aclose()


@pytest.fixture
def store(client: redis.asyncio.Redis) -> RedisMappingStore:
    return RedisMappingStore(client, retention_seconds=RETENTION)


async def test_records_indexed_by_the_user_id_alone_are_found_by_their_user_after_it(
    client: redis.asyncio.Redis, store: RedisMappingStore
) -> None:
    now = int(time.time())
    await write_as_0_1_0(
        client,
        record("from-idp", IDP, issued=now - 2),
        record("no-issuer", None, issued=now - 1),
        record("bobs", IDP, user="bob", issued=now),
    )
    assert await listed(store, IDP) == []  # what an upgrade without the migration finds

    report = await migrate_user_indexes(client)

    assert report == MigrationReport(indexes=2, moved=3, dropped=0)
    assert await listed(store, IDP) == ["from-idp"]
    assert await listed(store, None) == ["no-issuer"]
    assert await listed(store, ANY_ISSUER) == ["no-issuer", "from-idp"]
    assert await listed(store, IDP, user="bob") == ["bobs"]
    assert await client.exists(old_index("alice"), old_index("bob")) == 0


async def test_an_entry_whose_record_has_expired_is_dropped(client: redis.asyncio.Redis) -> None:
    await client.zadd(old_index("alice"), {f"{int(time.time()) * 1000:013d}:gone": 0})

    report = await migrate_user_indexes(client)

    assert report == MigrationReport(indexes=1, moved=0, dropped=1)
    assert await client.exists(old_index("alice")) == 0


async def test_a_second_run_finds_nothing_to_do_and_changes_nothing(
    client: redis.asyncio.Redis, store: RedisMappingStore
) -> None:
    await write_as_0_1_0(client, record("p1", IDP, issued=int(time.time())))
    await migrate_user_indexes(client)

    again = await migrate_user_indexes(client)

    assert again == MigrationReport()
    assert await listed(store, IDP) == ["p1"]


async def test_what_the_new_version_wrote_meanwhile_is_kept_beside_what_is_moved(
    client: redis.asyncio.Redis, store: RedisMappingStore
) -> None:
    now = int(time.time())
    await write_as_0_1_0(client, record("before", IDP, issued=now - 5))
    await store.record(record("after", IDP, issued=now))

    await migrate_user_indexes(client)

    assert await listed(store, IDP) == ["after", "before"]


async def test_a_moved_index_expires_no_earlier_than_its_newest_record(
    client: redis.asyncio.Redis,
) -> None:
    now = int(time.time())
    await write_as_0_1_0(
        client, record("old", IDP, issued=now - 300), record("new", IDP, issued=now)
    )

    await migrate_user_indexes(client)

    index_expiry = await client.expiretime(user_index_key(IDP, "alice"))
    record_expiry = await client.expiretime("ts:{ts}:p:new")
    assert abs(index_expiry - record_expiry) <= 1


async def test_a_ban_stored_before_bans_had_an_issuer_still_refuses_the_user_id_from_every_issuer(
    client: redis.asyncio.Redis, store: RedisMappingStore
) -> None:
    stored = {
        "id": "ban_old",
        "user_id": "alice",
        "stage_arn": None,
        "until": None,
        "reason": "spam",
        "created_at": int(time.time()),
        "created_by": "admin:1a2b3c4d5e6f",
    }
    await client.hset("ts:{ts}:bans", "ban_old", json.dumps(stored))
    await client.set("ts:{ts}:ban:u:" + old_user_hash("alice"), "ban_old")
    gate = RedisGate(client, store, retention_seconds=RETENTION)

    async def refused(issuer: str | None) -> bool:
        admission = await gate.admit(
            [], issuer=issuer, user_id="alice", stage_arn=STAGE, record=None
        )
        return admission.ban_id == "ban_old"

    await migrate_user_indexes(client)

    assert await refused(IDP)
    assert await refused(None)
    assert [(b.id, b.issuer) for b in await store.bans()] == [("ban_old", ANY_ISSUER)]
    await store.remove_ban("ban_old")
    assert not await refused(IDP)
    assert not await refused(None)


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with redis_cluster() as url:
        yield url


async def test_the_migration_runs_on_redis_cluster_too(cluster_url: str) -> None:
    client = build_redis(cluster_url, timeout_seconds=2)
    try:
        await connect(client)
        await client.flushdb(target_nodes=client.ALL_NODES)  # every node of it
        now = int(time.time())
        await write_as_0_1_0(client, record("a", IDP, issued=now), record("b", None, issued=now))

        report = await migrate_user_indexes(client)

        assert report == MigrationReport(indexes=1, moved=2, dropped=0)
        store = RedisMappingStore(client, retention_seconds=RETENTION)
        assert await listed(store, IDP) == ["a"]
        assert await listed(store, None) == ["b"]
    finally:
        await client.aclose()
