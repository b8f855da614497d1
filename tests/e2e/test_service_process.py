"""The whole product as separate processes: emulator, `keys rotate`, `user-token`, `serve`."""

from __future__ import annotations

import json
import socket
from importlib.metadata import version

import httpx
import pytest

from tests.e2e.conftest import SECRET, one_token_from_serve
from tests.support.processes import background, create_stage, run_cli, wait_for_http
from tests.support.redis_server import free_port


def test_serve_issues_a_token_that_joins(emulator_url: str, service_env: dict[str, str]) -> None:
    rotated = run_cli("keys", "rotate", env=service_env)
    assert rotated.returncode == 0, rotated.stderr
    assert '"status": "active"' in rotated.stdout
    user = run_cli("user-token", "--sub", "e2e-user", "--roles", "publisher", env=service_env)
    assert user.returncode == 0, user.stderr
    stage_arn = create_stage(emulator_url, "e2e")
    port = free_port()
    with background("serve", "--port", str(port), env=service_env) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", proc=proc)
        response = httpx.post(
            f"{base}/v1/participant-tokens",
            json={"stageArn": stage_arn, "capabilities": ["PUBLISH"]},
            headers={"Authorization": f"Bearer {user.stdout.strip()}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    joined = httpx.post(
        f"{emulator_url}/_emulator/join", json={"token": response.json()["token"]}, timeout=5
    )
    assert joined.status_code == 200, joined.text
    assert joined.json()["userId"] == "e2e-user"


def test_issuance_log_line_is_json_with_the_mapping_and_no_token(
    emulator_url: str, service_env: dict[str, str]
) -> None:
    served = one_token_from_serve(emulator_url, service_env, "logged-user")

    response, output = served.response, served.output
    assert response.json()["token"] not in output
    assert served.user_jwt not in output
    assert SECRET not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    issued = [line for line in lines if line.get("event") == "token_issued"]
    assert len(issued) == 1
    assert issued[0]["participantId"] == response.json()["participantId"]
    assert issued[0]["appUserId"] == "logged-user"
    assert issued[0]["requestId"]


def test_serve_without_authentication_refuses_to_start(service_env: dict[str, str]) -> None:
    env = {**service_env, "TOKEN_SERVICE_AUTH_SHARED_SECRET": ""}
    result = run_cli("serve", "--port", str(free_port()), env=env, timeout=30)
    assert result.returncode == 2
    assert "no app-user authentication" in result.stderr


def test_serve_in_local_mode_without_an_active_key_refuses_to_start(
    service_env: dict[str, str],
) -> None:
    result = run_cli("serve", "--port", str(free_port()), env=service_env, timeout=30)
    assert result.returncode == 2
    assert "no active signing key" in result.stderr
    assert "keys rotate" in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_port_in_use_says_which_and_exits_2(
    service_env: dict[str, str], workers: str
) -> None:
    env = {**service_env, "TOKEN_SERVICE_MODE": "ivs"}  # no signing key needed
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--workers", workers, env=env, timeout=60)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "TOKEN_SERVICE_PORT (--port)" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_configuration_lists_every_problem(service_env: dict[str, str]) -> None:
    env = {
        **service_env,
        "TOKEN_SERVICE_MODE": "nope",
        "TOKEN_SERVICE_RATE_LIMIT_IP": "lots",
    }
    result = run_cli("serve", env=env, timeout=30)
    assert result.returncode == 2
    assert "TOKEN_SERVICE_MODE" in result.stderr
    assert "TOKEN_SERVICE_RATE_LIMIT_IP" in result.stderr


def test_version_is_the_installed_distributions(service_env: dict[str, str]) -> None:
    shown = run_cli("--version", env=service_env)

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"token-service {version('ivs-token-service')}"
