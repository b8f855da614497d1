"""`token-service participants show|of-user|migrate`: the mapping log from a shell."""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio

from tests.support.processes import run_cli
from token_service.mapping.records import MappingRecord, encode_record, legacy_user_index_key
from token_service.mapping.store import RedisMappingStore

IDP = "https://idp.example"


def _record(pid: str, user: str, issued: int, issuer: str | None = None) -> MappingRecord:
    return MappingRecord(
        participant_id=pid,
        app_user_id=user,
        token_user_id=user,
        issuer=issuer,
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


def test_of_user_with_an_issuer_lists_only_that_users_participants(redis_url: str) -> None:
    now = int(time.time())
    _store(redis_url, _record("Idp1", "u1", now, IDP), _record("Secret1", "u1", now))
    env = {"TOKEN_SERVICE_REDIS_URL": redis_url}

    def listed(*issuer: str) -> list[str]:
        result = run_cli("participants", "of-user", "u1", *issuer, env=env)
        assert result.returncode == 0, result.stderr
        return sorted(p["participantId"] for p in json.loads(result.stdout)["participants"])

    assert listed("--issuer", IDP) == ["Idp1"]
    assert listed("--issuer", "") == ["Secret1"]
    assert listed() == ["Idp1", "Secret1"]


def test_of_user_needs_the_issuer_when_a_secret_and_oidc_are_both_configured(
    redis_url: str,
) -> None:
    _store(redis_url, _record("Idp1", "u1", int(time.time()), IDP))
    env = {
        "TOKEN_SERVICE_REDIS_URL": redis_url,
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": "s" * 32,
        "TOKEN_SERVICE_AUTH_JWKS_URL": "https://idp.example/.well-known/jwks.json",
        "TOKEN_SERVICE_AUTH_ISSUER": IDP,
        "TOKEN_SERVICE_AUTH_AUDIENCE": "token-service",
    }

    result = run_cli("participants", "of-user", "u1", env=env)

    assert result.returncode == 1
    assert "--issuer" in result.stderr
    assert IDP in result.stderr


def test_migrate_moves_the_0_1_0_user_index_and_says_what_it_did(redis_url: str) -> None:
    now = int(time.time())
    _store(redis_url)
    member = f"{now * 1000:013d}:Old1"

    async def write_as_0_1_0() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        await client.set("ts:{ts}:p:Old1", encode_record(_record("Old1", "u1", now, IDP)))
        await client.zadd(legacy_user_index_key("u1"), {member: 0})
        await client.aclose()

    asyncio.run(write_as_0_1_0())
    env = {"TOKEN_SERVICE_REDIS_URL": redis_url}

    migrated = run_cli("participants", "migrate", env=env)
    found = run_cli("participants", "of-user", "u1", "--issuer", IDP, env=env)

    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout) == {"indexes": 1, "moved": 1, "dropped": 0}
    assert [p["participantId"] for p in json.loads(found.stdout)["participants"]] == ["Old1"]


def test_unknown_participant_exits_nonzero_with_a_message(redis_url: str) -> None:
    _store(redis_url)
    result = run_cli("participants", "show", "Nope", env={"TOKEN_SERVICE_REDIS_URL": redis_url})
    assert result.returncode == 1
    assert "no mapping record" in result.stderr


def test_without_redis_the_cli_says_to_use_the_admin_api() -> None:
    result = run_cli("participants", "show", "X", env={"TOKEN_SERVICE_REDIS_URL": ""})
    assert result.returncode == 2
    assert "admin API" in result.stderr
