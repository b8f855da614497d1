"""Two key rings sharing Redis (two replicas): one lifecycle, fenced writes, one scheduler."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.keys.support import Clock, make_ring
from token_service.errors import Conflict
from token_service.keys import KeyFiles, KeyStatus
from token_service.keys.locks import MemoryLock, RedisLock
from token_service.keys.state import LOCK_KEY, RedisKeyState
from token_service.keys.usage import RedisKeyUsage


async def test_a_rotation_through_one_ring_is_seen_by_the_other_after_refresh(
    ivs_client: Any, keys_dir: Path, clock: Clock, redis_client: Any
) -> None:
    first = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    second = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    await first.rotate()
    await second.refresh()
    rotated = await first.rotate()
    assert await second.refresh() is True
    assert second.active() == rotated


async def test_a_read_only_replica_promotes_a_key_prepared_elsewhere(
    ivs_client: Any, keys_dir: Path, clock: Clock, redis_client: Any
) -> None:
    operator = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    await operator.rotate()
    prepared = await operator.prepare()
    replica = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client, read_only=True)
    await replica.refresh(force=True)
    assert (await replica.rotate()).name == prepared.name
    await operator.refresh()
    assert operator.active() is not None
    assert operator.active().name == prepared.name  # type: ignore[union-attr]


async def test_a_read_only_replica_refuses_what_needs_a_new_private_key(
    ivs_client: Any, keys_dir: Path, clock: Clock, redis_client: Any
) -> None:
    await make_ring(ivs_client, keys_dir, clock, redis_client=redis_client).rotate()
    replica = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client, read_only=True)
    await replica.refresh(force=True)
    with pytest.raises(Conflict) as refused:
        await replica.rotate()
    assert "keys prepare" in refused.value.detail


async def test_a_key_deleted_through_the_shared_state_is_never_signed_with_from_read_only_files(
    ivs_client: Any, keys_dir: Path, clock: Clock, redis_client: Any
) -> None:
    writer = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    compromised = await writer.rotate()
    replica = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client, read_only=True)
    await replica.refresh(force=True)
    files_before = KeyFiles(keys_dir).version()
    await replica.revoke(compromised.name)
    # The read-only store still holds the files; the tombstone keeps them unused.
    assert KeyFiles(keys_dir).version() == files_before
    fresh = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client, read_only=True)
    await fresh.refresh(force=True)
    assert compromised.name not in {k.name for k in fresh.list_keys()}
    assert fresh.active() is None


async def test_revoking_the_active_key_leaves_other_replicas_no_moment_without_one(
    ivs_client: Any, keys_dir: Path, clock: Clock, redis_client: Any
) -> None:
    """Issue 20, item 7: the revoked key's removal and its successor's activation are one
    commit; before, a replica refreshing between the two had no key (a 503)."""
    writer = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    compromised = await writer.rotate()
    replica = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    await replica.refresh(force=True)
    seen: list[str | None] = []
    # The one seam between the two commits of a revoke.
    shared = writer._shared
    assert shared is not None
    commit = shared.commit

    async def commit_then_look(lease: Any, changes: Any) -> int:
        generation = await commit(lease, changes)
        await replica.refresh(force=True)
        active = replica.active()
        seen.append(active.name if active is not None else None)
        return generation

    shared.commit = commit_then_look  # type: ignore[method-assign]
    revocation = await writer.revoke(compromised.name)

    assert revocation.active is not None
    assert seen == [revocation.active.name]


async def test_a_write_after_the_lease_expired_is_refused(redis_client: Any) -> None:
    state = RedisKeyState(redis_client)
    lease = await RedisLock(redis_client).acquire(LOCK_KEY, ttl_seconds=0.05)
    assert lease is not None
    await redis_client.delete(LOCK_KEY)  # the lease ran out; another replica may hold it now
    with pytest.raises(Conflict):
        await state.commit(lease, {"k": {"name": "k", "status": "active"}})
    assert await redis_client.hgetall("token-service:{keys}:state") == {}


async def test_scheduled_rotation_acts_once_across_two_rings(
    ivs_client: Any, keys_dir: Path, clock: Clock, redis_client: Any
) -> None:
    first = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    second = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    await first.rotate()
    clock.advance(timedelta(days=1))
    interval, lead = timedelta(days=1), timedelta(hours=1)
    acted = await first.scheduled_step(interval, lead)
    assert [a for a, _ in acted] == ["prepared", "rotated"]
    assert await second.scheduled_step(interval, lead) == []
    statuses = sorted(k.status for k in second.list_keys())
    assert statuses == [KeyStatus.ACTIVE, KeyStatus.RETIRING]


async def test_revoke_counts_the_tokens_of_every_replica(
    ivs_client: Any, keys_dir: Path, clock: Clock, redis_client: Any
) -> None:
    first = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    second = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    key = await first.rotate()
    await second.refresh()
    soon = clock.now + timedelta(minutes=10)
    first.usage.record(key.arn, soon)
    second.usage.record(key.arn, soon)
    second.usage.record(key.arn, soon)
    await second.usage.flush()  # what a replica does when asked to by the revoking one
    assert (await first.revoke(key.name)).invalidated_tokens == 3


async def test_usage_counts_only_tokens_not_yet_expired(redis_client: Any, clock: Clock) -> None:
    usage = RedisKeyUsage(redis_client)
    usage.record("arn:k", clock.now + timedelta(minutes=5))
    usage.record("arn:k", clock.now - timedelta(minutes=5))
    assert await usage.unexpired("arn:k", clock.now) == 1
    latest = await usage.max_expiry("arn:k")
    assert latest == (clock.now + timedelta(minutes=5)).replace(microsecond=0)


async def test_a_held_lock_is_not_granted_again_until_released(
    store_kind: str, redis_client: Any
) -> None:
    lock = MemoryLock() if store_kind == "memory" else RedisLock(redis_client)
    lease = await lock.acquire("lock:test", ttl_seconds=30)
    assert lease is not None
    assert await lock.acquire("lock:test", ttl_seconds=30, wait_seconds=0.1) is None
    await lease.release()
    assert await lock.acquire("lock:test", ttl_seconds=30) is not None


async def test_an_expired_holder_cannot_release_the_next_holders_lock(
    store_kind: str, redis_client: Any
) -> None:
    lock = MemoryLock() if store_kind == "memory" else RedisLock(redis_client)
    stale = await lock.acquire("lock:test", ttl_seconds=0.05)
    assert stale is not None
    current = await lock.acquire("lock:test", ttl_seconds=30, wait_seconds=2)
    assert current is not None
    await stale.release()
    assert await lock.acquire("lock:test", ttl_seconds=30) is None
