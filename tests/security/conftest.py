"""Module-scoped set-up shared by the security suites: one emulator, one signing key
and one stage per test module, so a table of a hundred hostile inputs costs one
start-up rather than a hundred. Tests here only read this state (they issue tokens
and join), so sharing it across a module's tests is safe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import boto3
import pytest
import redis
from botocore.config import Config as BotoConfig
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer

from tests.http.conftest import rotate_key
from tests.support.processes import background, wait_for_http
from tests.support.redis_server import free_port


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[EmulatorServer]:
    """Without IVS's per-operation rates: these suites read participants back after
    every join (GetParticipant allows 5 per second), which is not what they test."""
    server = EmulatorServer(options=EmulatorOptions(quotas_enabled=False)).start()
    try:
        yield server
    finally:
        server.stop(wait=False)


@pytest.fixture(scope="module")
def module_ivs(
    module_emulator: EmulatorServer, emulator_boto3_session: boto3.session.Session
) -> Any:
    return emulator_boto3_session.client(
        "ivs-realtime",
        endpoint_url=module_emulator.url,
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="module")
def module_env(
    module_emulator: EmulatorServer, module_ivs: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Service settings for the module's emulator, with an active signing key and no
    authentication yet (each suite adds its own)."""
    keys_dir: Path = tmp_path_factory.mktemp("security") / "keys"
    rotate_key(module_ivs, keys_dir)
    return {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": module_emulator.url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(keys_dir),
    }


@pytest.fixture(scope="module")
def stage_arn(module_ivs: Any) -> str:
    return str(module_ivs.create_stage(name="security")["stage"]["arn"])


#: The emulator accepts any key; boto3 wants one to sign with.
AWS_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


@contextmanager
def _served(env: dict[str, str], output: IO[str] | None) -> Iterator[str]:
    port = free_port()
    with background("serve", "--port", str(port), env=env | AWS_CREDENTIALS, output=output) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", proc=proc)
        yield base


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """`token-service serve` (uvicorn) with `env` (the module's emulator and key, and a test's
    own authentication); yields its base URL once it answers."""
    with _served(env, None) as base:
        yield base


@contextmanager
def serving_logged(env: dict[str, str], log: Path) -> Iterator[str]:
    """As `serving`, with the process's output (JSON log lines) written to `log` as it
    runs, for tests that read what the service logged."""
    with log.open("w", encoding="utf-8") as output, _served(env, output) as base:
        yield base


@pytest.fixture(scope="module")
def module_redis_url(redis_url: str) -> str:
    """The session's Redis server, emptied for this module: a module's served processes share
    its key state, which another module's signing key (still marked active there) would
    contradict."""
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    client.flushdb()
    client.close()
    return redis_url
