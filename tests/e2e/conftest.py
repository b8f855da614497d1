"""End-to-end fixtures: the emulator as its own process, as an operator runs it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.processes import background, create_stage, run_cli, wait_for_http
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


@dataclass(frozen=True)
class ServedToken:
    """One token request answered by a `serve` process that then stopped."""

    response: httpx.Response
    #: The app-user JWT it was asked with.
    user_jwt: str
    #: Everything the process wrote (stdout and stderr) up to its exit.
    output: str


def one_token_from_serve(
    emulator_url: str, env: dict[str, str], sub: str, headers: Mapping[str, str] | None = None
) -> ServedToken:
    """A key rotated in, an app-user JWT for `sub`, a stage, then `serve` answering one
    token request (with `headers` too), stopped with SIGTERM before its output is read."""
    assert run_cli("keys", "rotate", env=env).returncode == 0
    user = run_cli("user-token", "--sub", sub, env=env).stdout.strip()
    stage_arn = create_stage(emulator_url, sub)
    port = free_port()
    with background("serve", "--port", str(port), env=env) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", proc=proc)
        response = httpx.post(
            f"{base}/v1/participant-tokens",
            json={"stageArn": stage_arn},
            headers={"Authorization": f"Bearer {user}", **(headers or {})},
            timeout=10,
        )
    assert response.status_code == 201, response.text
    return ServedToken(response, user, proc.stdout.read() if proc.stdout else "")
