"""No key left at IVS that nobody holds (issue 20, item 2).

An import can succeed at IVS while the ring never records the key: GetPublicKey after it
fails, ImportPublicKey answers after the deadline, or the commit is refused. Each such
key held one of IVS's three slots for ever; after two, every rotate answered 409. Against
the emulator over HTTP with injected faults and latency, and a real Redis.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.keys.support import LIFETIME, MARGIN, Clock, ivs_arns, make_ring
from token_service.errors import Conflict, DomainError
from token_service.ivs.client import Ivs, RetryPolicy
from token_service.keys import KeyFiles, KeyStatus
from token_service.keys.imports import MemoryImportNotes, RedisImportNotes
from token_service.keys.locks import MemoryLock
from token_service.keys.model import generate_private_key, public_pem
from token_service.keys.ring import KeyRing
from token_service.keys.runtime import KeyRuntime
from token_service.keys.state import LOCK_KEY


def _fault(emulator: Any, operation: str, **fault: Any) -> None:
    httpx.post(
        f"{emulator.url}/_emulator/faults", json={"operation": operation, **fault}, timeout=5
    ).raise_for_status()


def _clear_faults(emulator: Any) -> None:
    httpx.delete(f"{emulator.url}/_emulator/faults", timeout=5).raise_for_status()


async def test_a_key_imported_but_not_verified_is_deleted_at_once(
    ivs_client: Any, keys_dir: Path, clock: Clock, emulator: Any
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    _fault(emulator, "GetPublicKey", errorRate=1.0)

    with pytest.raises(DomainError):
        await ring.rotate()

    assert ivs_arns(ivs_client) == set()


async def test_a_key_whose_import_answered_after_the_deadline_is_deleted_by_reconciliation(
    ivs_client: Any, keys_dir: Path, clock: Clock, emulator: Any
) -> None:
    impatient = Ivs(ivs_client, workers=2, retry=RetryPolicy(max_attempts=1, deadline_seconds=0.3))
    ring = KeyRing(
        KeyFiles(keys_dir),
        impatient,
        max_token_lifetime=LIFETIME,
        clock=clock,
        delete_margin=MARGIN,
    )
    ring.load()
    _fault(emulator, "ImportPublicKey", latencyMs=1000)
    with pytest.raises(DomainError):
        await ring.rotate()
    # IVS finishes the import the client gave up on.
    for _ in range(100):
        if ivs_arns(ivs_client):
            break
        await asyncio.sleep(0.1)
    assert len(ivs_arns(ivs_client)) == 1
    _clear_faults(emulator)

    result = await ring.reconcile()

    assert result is not None
    assert [k.name.startswith("ts-") for k in result.deleted] == [True]
    assert ivs_arns(ivs_client) == set()


async def test_a_key_whose_commit_was_refused_is_adopted_as_next_not_left_orphaned(
    ivs_client: Any, keys_dir: Path, clock: Clock, redis_client: Any
) -> None:
    """Its private half was saved (as `next`) before the fenced commit: the ring adopts it,
    and the active key stays the one Redis names."""
    ring = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    active = await ring.rotate()
    shared = ring.shared
    assert shared is not None

    async def refused(lease: Any, changes: Any) -> int:
        raise Conflict("the key lock expired during the operation; nothing was recorded")

    shared.commit = refused  # type: ignore[method-assign]
    with pytest.raises(Conflict):
        await ring.rotate()
    del shared.commit

    other_replica = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    await other_replica.refresh(force=True)
    result = await other_replica.reconcile()

    assert result is not None
    assert (result.deleted, result.unknown) == ((), ())
    statuses = {k.name: k.status for k in other_replica.list_keys()}
    assert statuses.pop(active.name) is KeyStatus.ACTIVE
    assert list(statuses.values()) == [KeyStatus.NEXT]
    assert len(ivs_arns(ivs_client)) == 2


async def test_a_key_imported_elsewhere_is_reported_and_left_alone(
    ivs_client: Any, keys_dir: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    await ring.rotate()
    foreign = ivs_client.import_public_key(
        publicKeyMaterial=public_pem(generate_private_key()), name="another-deployment"
    )["publicKey"]["arn"]

    with caplog.at_level(logging.WARNING, logger="token_service.keys.ring"):
        result = await ring.reconcile()

    assert result is not None
    assert result.deleted == ()
    assert [k.arn for k in result.unknown] == [foreign]
    assert foreign in ivs_arns(ivs_client)
    assert ring.reconciled.unknown_at_ivs == 1
    events = [r.__dict__.get("event") for r in caplog.records]
    assert events == ["key_unknown_at_ivs"]


async def test_a_key_of_this_service_that_no_note_names_is_not_deleted(
    ivs_client: Any, keys_dir: Path, clock: Clock, tmp_path: Path
) -> None:
    """An operator's `keys rotate` elsewhere, whose files have not reached this replica:
    the name looks like ours, but nothing here set out to import it."""
    elsewhere = make_ring(ivs_client, tmp_path / "operator-keys", clock)
    made_elsewhere = await elsewhere.rotate()
    ring = make_ring(ivs_client, keys_dir, clock)

    result = await ring.reconcile()

    assert result is not None
    assert [k.name for k in result.unknown] == [made_elsewhere.name]
    assert made_elsewhere.arn in ivs_arns(ivs_client)


async def test_reconciliation_waits_its_turn_while_another_replica_holds_the_key_lock(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    lock = MemoryLock()
    ring = KeyRing(
        KeyFiles(keys_dir),
        Ivs(ivs_client, workers=2),
        max_token_lifetime=LIFETIME,
        clock=clock,
        lock=lock,
        imports=MemoryImportNotes(),
    )
    ring.load()
    held = await lock.acquire(LOCK_KEY, ttl_seconds=60)
    assert held is not None

    assert await ring.reconcile() is None


async def test_notes_are_shared_so_any_replica_finds_any_orphan(redis_client: Any) -> None:
    notes, other = RedisImportNotes(redis_client), RedisImportNotes(redis_client)

    await notes.note("ts-20261206T000000Z-abcdef")

    assert await other.noted() == {"ts-20261206T000000Z-abcdef"}
    await other.forget({"ts-20261206T000000Z-abcdef"})
    assert await notes.noted() == set()


async def test_after_two_half_made_imports_rotation_still_works_once_reconciled(
    ivs_client: Any, keys_dir: Path, clock: Clock, emulator: Any
) -> None:
    """The reported symptom: two orphans and the active key fill IVS's three slots."""
    ring = make_ring(ivs_client, keys_dir, clock)
    await ring.rotate()
    for _ in range(2):
        # An orphan as the deadline case leaves it: noted, at IVS, never recorded.
        name = f"ts-20261206T00000{_}Z-00000{_}"
        await ring._imports.note(name)
        ivs_client.import_public_key(
            publicKeyMaterial=public_pem(generate_private_key()), name=name
        )
    assert len(ivs_arns(ivs_client)) == 3
    clock.advance(timedelta(hours=1))

    await ring.reconcile()

    assert (await ring.rotate()).name.startswith("ts-")


async def test_start_up_reconciles_before_serving(
    ivs_client: Any, keys_dir: Path, clock: Clock, redis_client: Any
) -> None:
    """A half-made import noted by a replica that died: the next start removes it."""
    name = "ts-20261206T000000Z-dead00"
    await RedisImportNotes(redis_client).note(name)
    ivs_client.import_public_key(publicKeyMaterial=public_pem(generate_private_key()), name=name)
    ring = make_ring(ivs_client, keys_dir, clock, redis_client=redis_client)
    runtime = KeyRuntime(ring, reconcile_seconds=300)

    await runtime.start()
    try:
        assert ivs_arns(ivs_client) == set()
        assert ring.reconciled.orphans_deleted == 1
    finally:
        await runtime.close()
