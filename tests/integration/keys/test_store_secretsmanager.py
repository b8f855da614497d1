"""Signing keys in AWS Secrets Manager: moto in server mode, over HTTP through boto3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import server as moto_server

from tests.integration.keys.support import MARGIN, Clock
from tests.support.redis_server import free_port
from token_service.errors import ConfigurationError
from token_service.ivs.client import Ivs
from token_service.keys import KeyRing, KeyStatus
from token_service.keys.locks import RedisLock
from token_service.keys.secretsmanager import SecretsManagerKeyStore
from token_service.keys.state import RedisKeyState
from token_service.keys.usage import RedisKeyUsage

PREFIX = "test/signing-keys/"


@pytest.fixture(scope="module")
def secretsmanager_url() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def secrets_client(secretsmanager_url: str, emulator_boto3_session: Any) -> Iterator[Any]:
    client = emulator_boto3_session.client("secretsmanager", endpoint_url=secretsmanager_url)
    yield client
    for secret in client.list_secrets()["SecretList"]:
        client.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)


def make_ring(secrets_client: Any, ivs_client: Any, redis_client: Any, clock: Clock) -> KeyRing:
    ring = KeyRing(
        SecretsManagerKeyStore(secrets_client, prefix=PREFIX),
        Ivs(ivs_client, workers=2),
        max_token_lifetime=MARGIN,
        clock=clock,
        shared=RedisKeyState(redis_client),
        lock=RedisLock(redis_client),
        usage=RedisKeyUsage(redis_client),
        flush_wait_seconds=0.05,
    )
    ring.load()
    return ring


async def test_a_rotated_key_is_stored_as_a_secret_and_loads_on_another_replica(
    secrets_client: Any, ivs_client: Any, redis_client: Any
) -> None:
    clock = Clock()
    key = await make_ring(secrets_client, ivs_client, redis_client, clock).rotate()
    stored = json.loads(secrets_client.get_secret_value(SecretId=PREFIX + key.name)["SecretString"])
    assert stored["metadata"]["arn"] == key.arn
    assert stored["privateKey"].startswith("-----BEGIN PRIVATE KEY-----")
    replica = make_ring(secrets_client, ivs_client, redis_client, clock)
    await replica.refresh(force=True)
    active = replica.active()
    assert active is not None
    assert active.name == key.name
    assert active.private_key is not None


async def test_rotation_updates_the_secrets_and_deleting_removes_the_secret(
    secrets_client: Any, ivs_client: Any, redis_client: Any
) -> None:
    clock = Clock()
    ring = make_ring(secrets_client, ivs_client, redis_client, clock)
    old = await ring.rotate()
    await ring.rotate()
    stored = json.loads(secrets_client.get_secret_value(SecretId=PREFIX + old.name)["SecretString"])
    assert stored["metadata"]["status"] == KeyStatus.RETIRING.value
    await ring.revoke(old.name)
    names = {s["Name"] for s in secrets_client.list_secrets()["SecretList"]}
    assert PREFIX + old.name not in names


def test_a_secret_holding_another_key_type_is_a_start_up_error_naming_it(
    secrets_client: Any, tmp_path: Path
) -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    secrets_client.create_secret(
        Name=PREFIX + "wrong",
        SecretString=json.dumps({"privateKey": pem, "metadata": {"name": "wrong"}}),
    )
    with pytest.raises(ConfigurationError) as failed:
        SecretsManagerKeyStore(secrets_client, prefix=PREFIX).load_all()
    assert f"secretsmanager:{PREFIX}wrong: IVS needs an EC P-384" in failed.value.detail


def test_secrets_outside_the_prefix_are_not_keys(secrets_client: Any) -> None:
    secrets_client.create_secret(Name="test/other", SecretString="{}")
    assert SecretsManagerKeyStore(secrets_client, prefix=PREFIX).load_all() == []


def test_the_store_version_changes_when_a_key_secret_changes(secrets_client: Any) -> None:
    store = SecretsManagerKeyStore(secrets_client, prefix=PREFIX)
    before = store.version()
    secrets_client.create_secret(Name=PREFIX + "x", SecretString="{}")
    assert store.version() != before
