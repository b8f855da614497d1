"""End-to-end fixtures: the emulator as its own process, as an operator runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import background, wait_for_http
from tests.support.redis_server import free_port


@pytest.fixture
def emulator_url() -> Iterator[str]:
    port = free_port()
    with background("emulator", "--port", str(port), env={}) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/_emulator/health", proc=proc)
        yield url


#: The shared secret of `service_env`'s app JWTs (`token-service user-token` signs with it).
SECRET = "e2e-shared-secret-" + "z" * 32


@pytest.fixture
def service_env(emulator_url: str, tmp_path: Path) -> dict[str, str]:
    """`token-service serve` and its commands against `emulator_url`: keys in the test's
    directory, a shared secret, JSON logs."""
    return {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator_url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path / "keys"),
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "TOKEN_SERVICE_LOG_FORMAT": "json",
    }
