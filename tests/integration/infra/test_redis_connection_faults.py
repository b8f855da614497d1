"""A Redis connection that dies under the service's event loop (uvloop) fails as a Redis error.

Seen in the fault runs (tests/e2e/test_faults_redis.py): Redis killed while a pooled
connection was being set up; uvloop then raises `RuntimeError` for the write, which
redis-py passed through. Every caller handles `RedisError`/`OSError`, so it surfaced
as a 500, and in the mapping upkeep it ended the loop that writes the outbox back.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import uvloop

from tests.support.redis_server import RedisProcess
from token_service.admission.gate import OnMappingError, RedisGate
from token_service.bootstrap.mapping import MappingRuntime
from token_service.infra.redis import RedisClient, build_redis, close_redis
from token_service.mapping.disconnects import RedisDisconnectWork
from token_service.mapping.records import MappingRecord
from token_service.mapping.store import RedisMappingStore


async def close_a_pooled_connection_behind_the_clients_back(client: RedisClient) -> None:
    assert isinstance(client, redis.asyncio.Redis)
    pool = client.connection_pool
    connection = await pool.get_connection()
    connection._writer.transport.close()  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    await pool.release(connection)


def test_a_write_on_a_connection_the_peer_closed_is_a_connection_error(
    server: RedisProcess,
) -> None:
    async def scenario() -> BaseException | None:
        client = build_redis(server.url, timeout_seconds=0.5)
        try:
            await client.ping()
            await close_a_pooled_connection_behind_the_clients_back(client)
            server.stop()
            try:
                await client.ping()
            except BaseException as exc:  # noqa: BLE001 - the type is what is tested
                return exc
            return None
        finally:
            await close_redis(client)

    failure = uvloop.run(scenario())
    assert isinstance(failure, redis.ConnectionError), repr(failure)


def test_a_connection_the_peer_closed_is_replaced_while_redis_is_up(
    server: RedisProcess,
) -> None:
    async def scenario() -> bool:
        client = build_redis(server.url, timeout_seconds=0.5)
        try:
            await client.ping()
            await close_a_pooled_connection_behind_the_clients_back(client)
            return bool(await client.ping())
        finally:
            await close_redis(client)

    assert uvloop.run(scenario()) is True


def record(participant_id: str) -> MappingRecord:
    now = int(time.time())
    return MappingRecord(
        participant_id=participant_id,
        app_user_id="outbox-user",
        token_user_id="outbox-user",
        stage_arn="arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456",
        capabilities=["SUBSCRIBE"],
        issued_at=now,
        expires_at=now + 3600,
        signer="local",
    )


def test_the_outbox_is_still_written_after_an_unexpected_upkeep_error(
    clean_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("token_service.bootstrap.mapping.UPKEEP_SECONDS", 0.05)

    async def scenario() -> bool:
        client = build_redis(clean_redis, timeout_seconds=0.5)
        store = RedisMappingStore(client, retention_seconds=60)
        gate = RedisGate(
            client, store, retention_seconds=60, on_mapping_error=OnMappingError.OUTBOX
        )
        failures = iter([RuntimeError("unexpected")])
        refresh = gate.refresh_bans

        async def refresh_failing_once() -> None:
            for failure in failures:
                raise failure
            await refresh()

        monkeypatch.setattr(gate, "refresh_bans", refresh_failing_once)
        runtime = MappingRuntime(
            store=store, gate=gate, disconnects=RedisDisconnectWork(client), redis_gate=gate
        )
        gate.outbox.append(record("OutboxSurvives0000000001"))
        await runtime.start()
        try:
            deadline = time.monotonic() + 10
            written = False
            while not written and time.monotonic() < deadline:
                written = await store.get("OutboxSurvives0000000001") is not None
                await asyncio.sleep(0 if written else 0.05)
            return written
        finally:
            await runtime.close()
            await close_redis(client)

    # Its own event loop, as the service's (uvloop), bounded: a hang fails, with a reason.
    assert uvloop.run(scenario()), "the outbox was never written"
