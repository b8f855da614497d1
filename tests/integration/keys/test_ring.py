"""The key ring's lifecycle rules against the emulator (over HTTP), with a settable clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.keys.support import LIFETIME, MARGIN, Clock, ivs_arns, make_ring
from token_service.errors import ConfigurationError, Conflict
from token_service.keys import KeyFiles, KeyStatus

HOUR = timedelta(hours=1)


def imports(emulator: Any, ivs_client: Any) -> int:
    import httpx  # noqa: PLC0415

    stats = httpx.get(f"{emulator.url}/_emulator/stats", timeout=5).json()["operations"]
    return int(stats.get("ImportPublicKey", {}).get("calls", 0))


async def test_rotate_activates_a_new_key_and_retires_the_previous_until_its_safe_time(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    first = await ring.rotate()
    clock.advance(HOUR)
    second = await ring.rotate()
    keys = {k.name: k for k in ring.list_keys()}
    assert keys[second.name].status is KeyStatus.ACTIVE
    assert keys[first.name].status is KeyStatus.RETIRING
    assert keys[first.name].safe_to_delete_at == clock.now + LIFETIME + MARGIN
    assert ring.active() == second


async def test_rotate_promotes_a_prepared_next_key_without_another_import(
    ivs_client: Any, keys_dir: Path, clock: Clock, emulator: Any
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    await ring.rotate()
    prepared = await ring.prepare()
    assert prepared.status is KeyStatus.NEXT
    before = imports(emulator, ivs_client)
    rotated = await ring.rotate()
    assert rotated.name == prepared.name
    assert imports(emulator, ivs_client) == before


async def test_prepare_twice_returns_the_same_next_key(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    await ring.rotate()
    assert (await ring.prepare()).name == (await ring.prepare()).name


async def test_rotation_with_three_keys_deletes_the_oldest_retiring_key_once_safe(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    oldest = await ring.rotate()
    for _ in range(2):
        clock.advance(timedelta(minutes=1))
        await ring.rotate()
    clock.advance(LIFETIME + MARGIN)
    rotation = await ring.rotate_keys()
    assert [k.name for k in rotation.deleted] == [oldest.name]
    assert oldest.arn not in ivs_arns(ivs_client)
    assert len(ivs_arns(ivs_client)) == 3
    assert not (keys_dir / f"{oldest.name}.pem").exists()


async def test_rotation_with_three_keys_none_safe_is_409_naming_the_ways_out(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    for _ in range(3):
        await ring.rotate()
    with pytest.raises(Conflict) as refused:
        await ring.rotate()
    assert "force=true" in refused.value.detail
    assert "safe to delete at" in refused.value.detail
    assert len(ivs_arns(ivs_client)) == 3


async def test_rotation_with_three_keys_and_a_next_key_promotes_it(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    await ring.rotate()
    await ring.rotate()
    prepared = await ring.prepare()
    assert (await ring.rotate()).name == prepared.name
    assert len(ivs_arns(ivs_client)) == 3


async def test_a_shorter_policy_later_does_not_shorten_a_retiring_keys_safe_time(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    long_ring = make_ring(ivs_client, keys_dir, clock, lifetime=timedelta(hours=12))
    old = await long_ring.rotate()
    # The service restarts with a policy whose longest token is one hour.
    ring = make_ring(ivs_client, keys_dir, clock, lifetime=HOUR)
    await ring.rotate()
    retired = ring.get(old.name)
    assert ring.safe_to_delete_at(retired) == clock.now + timedelta(hours=12) + MARGIN
    clock.advance(HOUR + MARGIN)
    with pytest.raises(Conflict):
        await ring.delete(old.name)


async def test_tokens_issued_beyond_the_planned_safe_time_postpone_it(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    old = await ring.rotate()
    # A replica that had not heard of the rotation yet signed a token with the old key.
    ring.usage.record(old.arn, clock.now + 2 * LIFETIME)
    await ring.rotate()
    clock.advance(LIFETIME + MARGIN)
    with pytest.raises(Conflict):
        await ring.delete(old.name)
    clock.advance(LIFETIME)
    assert (await ring.delete(old.name)).forced is False


async def test_a_delete_before_the_stored_safe_time_is_refused_though_usage_would_allow_it(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    """The stored `safeToDeleteAt` is a bound of its own (issue 20, item 8): another replica
    or an earlier policy may have set it later than this ring's lifetime and counts say."""
    ring = make_ring(ivs_client, keys_dir, clock)
    old = await ring.rotate()
    await ring.rotate()
    stored = ring.get(old.name)
    KeyFiles(keys_dir).save(replace(stored, safe_to_delete_at=clock.now + 3 * LIFETIME))
    restarted = make_ring(ivs_client, keys_dir, clock)
    clock.advance(2 * LIFETIME)

    with pytest.raises(Conflict):
        await restarted.delete(old.name)
    clock.advance(LIFETIME)
    assert (await restarted.delete(old.name)).forced is False


async def test_deleting_a_retiring_key_after_its_safe_time_removes_it_everywhere(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    old = await ring.rotate()
    await ring.rotate()
    clock.advance(LIFETIME + MARGIN)
    result = await ring.delete(old.name)
    assert result.forced is False
    assert old.arn not in ivs_arns(ivs_client)
    assert not (keys_dir / f"{old.name}.json").exists()
    assert old.name not in {k.name for k in ring.list_keys()}


async def test_deleting_a_next_key_needs_no_force(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    await ring.rotate()
    prepared = await ring.prepare()
    assert (await ring.delete(prepared.name)).forced is False


async def test_revoking_the_active_key_deletes_it_and_activates_a_new_one_with_its_count(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    compromised = await ring.rotate()
    ring.usage.record(compromised.arn, clock.now + timedelta(minutes=30))
    ring.usage.record(compromised.arn, clock.now + timedelta(minutes=50))
    ring.usage.record(compromised.arn, clock.now - timedelta(minutes=5))  # already expired
    result = await ring.revoke(compromised.name)
    assert result.invalidated_tokens == 2
    assert result.active is not None
    assert ring.active() is not None
    assert ring.active().arn == result.active.arn  # type: ignore[union-attr]
    assert compromised.arn not in ivs_arns(ivs_client)
    assert not (keys_dir / f"{compromised.name}.pem").exists()


async def test_revoking_the_active_key_promotes_a_prepared_next_key(
    ivs_client: Any, keys_dir: Path, clock: Clock, emulator: Any
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    compromised = await ring.rotate()
    prepared = await ring.prepare()
    before = imports(emulator, ivs_client)
    result = await ring.revoke(compromised.name)
    assert result.active is not None
    assert result.active.name == prepared.name
    assert imports(emulator, ivs_client) == before


async def test_revoking_a_retiring_key_leaves_the_active_key_signing(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    old = await ring.rotate()
    current = await ring.rotate()
    result = await ring.revoke(old.name)
    assert result.active is not None
    assert result.active.name == current.name
    assert ring.active() == current


async def test_a_read_only_store_without_redis_refuses_every_change(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    await make_ring(ivs_client, keys_dir, clock).rotate()
    ring = make_ring(ivs_client, keys_dir, clock, read_only=True)
    with pytest.raises(Conflict) as refused:
        await ring.rotate()
    assert "read-only" in refused.value.detail


async def test_check_registered_names_the_file_of_a_key_ivs_does_not_know(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    key = await ring.rotate()
    ivs_client.delete_public_key(arn=key.arn)
    with pytest.raises(ConfigurationError) as failed:
        await make_ring(ivs_client, keys_dir, clock).check_registered()
    assert str(keys_dir / f"{key.name}.json") in failed.value.detail


async def test_a_signing_key_ivs_holds_is_not_missing_at_ivs(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    await ring.rotate()
    assert await ring.check_active_registered() is None
    assert not ring.missing_at_ivs()


async def test_a_signing_key_deleted_at_ivs_is_missing_once_checked(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    key = await ring.rotate()
    ivs_client.delete_public_key(arn=key.arn)
    assert await ring.check_active_registered() is not None
    assert ring.missing_at_ivs()
    assert ring.active() is None


async def test_scheduled_steps_prepare_then_promote_then_delete_when_each_is_due(
    ivs_client: Any, keys_dir: Path, clock: Clock
) -> None:
    ring = make_ring(ivs_client, keys_dir, clock)
    first = await ring.rotate()
    interval, lead = timedelta(days=1), timedelta(hours=2)
    assert await ring.scheduled_step(interval, lead) == []
    clock.advance(interval - lead)
    assert [a for a, _ in await ring.scheduled_step(interval, lead)] == ["prepared"]
    clock.advance(lead)
    assert [a for a, _ in await ring.scheduled_step(interval, lead)] == ["rotated"]
    assert ring.get(first.name).status is KeyStatus.RETIRING
    clock.advance(LIFETIME + MARGIN)
    deleted = await ring.scheduled_step(interval, lead)
    assert [(a, k.name) for a, k in deleted] == [("deleted", first.name)]


def test_a_key_file_with_another_curve_is_a_start_up_error_naming_it(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    tmp_path.joinpath("k.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tmp_path.joinpath("k.json").write_text(
        '{"name": "k", "arn": "arn:aws:ivs:us-east-1:1:public-key/x", "status": "active"}'
    )
    with pytest.raises(ConfigurationError) as failed:
        KeyFiles(tmp_path).load_all()
    assert f"{tmp_path / 'k.pem'}: IVS needs an EC P-384" in failed.value.detail


def test_an_unreadable_private_key_file_is_a_start_up_error_naming_it(tmp_path: Path) -> None:
    tmp_path.joinpath("k.json").write_text(
        '{"name": "k", "arn": "arn:aws:ivs:us-east-1:1:public-key/x", "status": "active"}'
    )
    with pytest.raises(ConfigurationError) as failed:
        KeyFiles(tmp_path).load_all()
    assert str(tmp_path / "k.pem") in failed.value.detail
