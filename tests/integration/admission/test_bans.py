"""Bans at the admission gate: a ban names an app user, (issuer, user id), or a user id
from every issuer; the Redis gate, its copy of the ban list used while Redis is down, and
the memory gate all read it the same way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import pytest
import redis.asyncio

from token_service.admission.gate import BanCopy, Gate, MemoryGate, RedisGate
from token_service.mapping.records import ANY_ISSUER, Ban
from token_service.mapping.store import MappingStore, MemoryMappingStore, RedisMappingStore

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
OTHER_STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/ZyXwVu987654"
IDP = "https://idp.example"


@dataclass
class Admission:
    gate: Gate
    store: MappingStore

    async def refused(self, issuer: str | None, user_id: str, stage: str = STAGE) -> bool:
        admission = await self.gate.admit(
            [], issuer=issuer, user_id=user_id, stage_arn=stage, record=None
        )
        return admission.ban_id is not None


@pytest.fixture
async def admission(store_redis_url: str | None) -> AsyncIterator[Admission]:
    if store_redis_url is None:
        memory = MemoryMappingStore(retention_seconds=60)
        yield Admission(MemoryGate(memory), memory)
        return
    client = redis.asyncio.Redis.from_url(store_redis_url, socket_timeout=2)
    store = RedisMappingStore(client, retention_seconds=60)
    try:
        yield Admission(RedisGate(client, store, retention_seconds=60), store)
    finally:
        await client.aclose()


def ban(issuer: str | None, *, user: str = "alice", stage: str | None = None) -> Ban:
    return Ban(
        id=f"ban_{issuer}_{stage}",
        user_id=user,
        issuer=issuer,
        stage_arn=stage,
        reason="r",
        created_at=int(time.time()),
        created_by="test",
    )


async def test_a_ban_of_one_issuers_user_refuses_only_that_user(admission: Admission) -> None:
    await admission.store.add_ban(ban(IDP))

    assert await admission.refused(IDP, "alice")
    assert not await admission.refused(None, "alice")
    assert not await admission.refused("https://other.example", "alice")
    assert not await admission.refused(IDP, "bob")


async def test_a_ban_of_the_user_without_an_issuer_spares_the_identity_providers(
    admission: Admission,
) -> None:
    await admission.store.add_ban(ban(None))

    assert await admission.refused(None, "alice")
    assert not await admission.refused(IDP, "alice")


async def test_a_ban_of_every_issuer_refuses_the_user_id_from_any(admission: Admission) -> None:
    await admission.store.add_ban(ban(ANY_ISSUER))

    for issuer in (IDP, None, "https://other.example"):
        assert await admission.refused(issuer, "alice")
    assert not await admission.refused(IDP, "bob")


async def test_a_stage_ban_of_one_issuers_user_refuses_only_there(admission: Admission) -> None:
    await admission.store.add_ban(ban(IDP, stage=STAGE))

    assert await admission.refused(IDP, "alice", STAGE)
    assert not await admission.refused(IDP, "alice", OTHER_STAGE)
    assert not await admission.refused(None, "alice", STAGE)


@pytest.mark.parametrize("issuer", [IDP, None, ANY_ISSUER])
async def test_a_lifted_ban_refuses_no_one_any_more(
    admission: Admission, issuer: str | None
) -> None:
    lifted = ban(issuer)
    await admission.store.add_ban(lifted)

    assert await admission.store.remove_ban(lifted.id) == lifted
    assert not await admission.refused(IDP, "alice")
    assert not await admission.refused(None, "alice")


def test_the_ban_copy_used_while_redis_is_down_reads_the_issuer_too() -> None:
    copy = BanCopy()
    copy.replace([ban(IDP), ban(ANY_ISSUER, user="bob")])

    assert copy.banned(IDP, "alice", STAGE) == ban(IDP).id
    assert copy.banned(None, "alice", STAGE) is None
    assert copy.banned(None, "bob", STAGE) == ban(ANY_ISSUER, user="bob").id


def _until(seconds: int) -> int:
    return int(time.time()) + seconds


async def test_a_shorter_ban_of_the_same_user_and_stage_does_not_end_a_longer_ones_hold(
    admission: Admission,
) -> None:
    """Before, the shorter ban took the one key both share, and the key expired with it:
    the ban until lifted was still listed but refused no one."""
    await admission.store.add_ban(ban(IDP))
    short = Ban(**{**msgspec.structs.asdict(ban(IDP)), "id": "ban_short", "until": _until(1)})
    await admission.store.add_ban(short)

    await asyncio.sleep(2.1)

    assert await admission.refused(IDP, "alice")


async def test_lifting_the_longer_ban_leaves_the_shorter_one_refusing(
    admission: Admission,
) -> None:
    await admission.store.add_ban(ban(IDP))
    short = Ban(**{**msgspec.structs.asdict(ban(IDP)), "id": "ban_short", "until": _until(3600)})
    await admission.store.add_ban(short)

    await admission.store.remove_ban(ban(IDP).id)

    assert await admission.refused(IDP, "alice")
    assert [b.id for b in await admission.store.bans()] == ["ban_short"]


async def test_lifting_a_ban_whose_key_a_stronger_one_holds_keeps_the_stronger(
    admission: Admission,
) -> None:
    short = Ban(**{**msgspec.structs.asdict(ban(IDP)), "id": "ban_short", "until": _until(3600)})
    await admission.store.add_ban(short)
    await admission.store.add_ban(ban(IDP))

    await admission.store.remove_ban("ban_short")

    assert await admission.refused(IDP, "alice")
