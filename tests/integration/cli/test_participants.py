"""`token-service participants show|of-user`: the mapping log from a shell."""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio

from tests.support.processes import run_cli
from token_service.mapping.records import MappingRecord
from token_service.mapping.store import RedisMappingStore


def _record(pid: str, user: str, issued: int) -> MappingRecord:
    return MappingRecord(
        participant_id=pid,
        app_user_id=user,
        token_user_id=user,
        stage_arn="arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456",
        capabilities=["PUBLISH", "SUBSCRIBE"],
        issued_at=issued,
        expires_at=issued + 3600,
        signer="local",
        key_arn="arn:aws:ivs:us-east-1:123456789012:public-key/k1",
    )


def _store(redis_url: str, *records: MappingRecord) -> None:
    async def write() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        await client.flushdb()
        store = RedisMappingStore(client, retention_seconds=3600)
        for record in records:
            await store.record(record)
        await client.aclose()

    asyncio.run(write())


def test_show_prints_the_record_as_json(redis_url: str) -> None:
    _store(redis_url, _record("PidShow1", "cli-user", int(time.time())))
    result = run_cli("participants", "show", "PidShow1", env={"TOKEN_SERVICE_REDIS_URL": redis_url})
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["participantId"] == "PidShow1"
    assert body["appUserId"] == "cli-user"
    assert body["capabilities"] == ["PUBLISH", "SUBSCRIBE"]


def test_of_user_lists_newest_first(redis_url: str) -> None:
    now = int(time.time())
    _store(redis_url, _record("Old1", "u1", now - 10), _record("New1", "u1", now))
    result = run_cli("participants", "of-user", "u1", env={"TOKEN_SERVICE_REDIS_URL": redis_url})
    assert result.returncode == 0, result.stderr
    assert [p["participantId"] for p in json.loads(result.stdout)["participants"]] == [
        "New1",
        "Old1",
    ]


def test_unknown_participant_exits_nonzero_with_a_message(redis_url: str) -> None:
    _store(redis_url)
    result = run_cli("participants", "show", "Nope", env={"TOKEN_SERVICE_REDIS_URL": redis_url})
    assert result.returncode == 1
    assert "no mapping record" in result.stderr


def test_without_redis_the_cli_says_to_use_the_admin_api() -> None:
    result = run_cli("participants", "show", "X", env={"TOKEN_SERVICE_REDIS_URL": ""})
    assert result.returncode == 2
    assert "admin API" in result.stderr
