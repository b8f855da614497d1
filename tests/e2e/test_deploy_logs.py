"""What a real `serve` process writes: JSON lines for a log pipeline, text on a terminal,
and never a token, a secret or an Authorization header, whatever the requests carried.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer

from tests.support.processes import CLI, background, run_cli, wait_for_http
from tests.support.redis_server import free_port

SECRET = "logs-shared-secret-" + "L" * 32
ADMIN_TOKEN = "logs-admin-token-ADMIN-0123456789"
FORGED_BEARER = "forged.bearer.LOGS-FORGED-MARKER"
WRONG_ADMIN = "wrong-admin-token-WRONG-MARKER-0123"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def module_emulator() -> Iterator[EmulatorServer]:
    # One emulator and one service run for the module: each test reads the same output.
    server = EmulatorServer(options=EmulatorOptions()).start()
    try:
        yield server
    finally:
        server.stop(wait=False)


@pytest.fixture(scope="module")
def env(
    module_emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    return {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": module_emulator.url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path_factory.mktemp("keys")),
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
        "TOKEN_SERVICE_LOG_FORMAT": "auto",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }


@pytest.fixture(scope="module")
def logged(env: dict[str, str], module_emulator: EmulatorServer) -> dict[str, Any]:
    """A service whose stdout is a pipe, after a mix of good and bad requests; stopped."""
    assert run_cli("keys", "rotate", env=env).returncode == 0
    user_jwt = run_cli("user-token", "--sub", "log-user", env=env).stdout.strip()
    ivs = boto3.client(
        "ivs-realtime",
        endpoint_url=module_emulator.url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    stage_arn = ivs.create_stage(name="logs")["stage"]["arn"]
    port = free_port()
    with background("serve", "--port", str(port), env=env) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", proc=proc)
        issued = httpx.post(
            f"{base}/v1/participant-tokens",
            json={"stageArn": stage_arn},
            headers={"Authorization": f"Bearer {user_jwt}", "X-Request-Id": "logs-req-0001"},
            timeout=10,
        )
        assert issued.status_code == 201
        forged = httpx.post(
            f"{base}/v1/participant-tokens",
            json={"stageArn": stage_arn},
            headers={"Authorization": f"Bearer {FORGED_BEARER}"},
            timeout=10,
        )
        assert forged.status_code == 401
        wrong = httpx.get(
            f"{base}/admin/keys", headers={"Authorization": f"Bearer {WRONG_ADMIN}"}, timeout=10
        )
        assert wrong.status_code == 401
        admin = httpx.get(
            f"{base}/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )
        assert admin.status_code == 200
        token_in_query = httpx.get(f"{base}/readyz", params={"token": user_jwt}, timeout=10)
        assert token_in_query.status_code in {200, 503}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        output = proc.stdout.read() if proc.stdout else ""
    return {
        "output": output,
        "lines": output.splitlines(),
        "never": [
            user_jwt,
            issued.json()["token"],
            SECRET,
            ADMIN_TOKEN,
            FORGED_BEARER,
            WRONG_ADMIN,
        ],
    }


def test_every_line_is_a_json_object_with_time_level_and_message(logged: dict[str, Any]) -> None:
    assert logged["lines"]
    for line in logged["lines"]:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= entry.keys(), line


def test_the_issued_token_line_has_its_event_and_request_id(logged: dict[str, Any]) -> None:
    entries = [json.loads(line) for line in logged["lines"]]
    (issued,) = [e for e in entries if e.get("event") == "token_issued"]
    assert issued["requestId"] == "logs-req-0001"
    assert issued["level"] == "info"


def test_lifecycle_events_are_logged(logged: dict[str, Any]) -> None:
    events = {json.loads(line).get("event") for line in logged["lines"]}
    assert {"listening", "clients_closed", "stopped"} <= events


@pytest.mark.parametrize("index", range(6))
def test_no_token_secret_or_bearer_value_appears(logged: dict[str, Any], index: int) -> None:
    assert logged["never"][index] not in logged["output"]


def test_no_authorization_header_appears(logged: dict[str, Any]) -> None:
    assert "authorization" not in logged["output"].lower()
    assert "bearer" not in logged["output"].lower()


def test_on_a_terminal_lines_are_for_people(env: dict[str, str], logged: dict[str, Any]) -> None:
    # After `logged`: its key is active, and the two services never run at once.
    port = free_port()
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc=None)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        text = read_all(controller)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    lines = [line for line in text.splitlines() if line.strip()]
    assert any("INFO" in line and "listening" in line for line in lines), text
    assert not any(line.lstrip().startswith("{") for line in lines), text


def read_all(fd: int, timeout: float = 5) -> str:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal's other end closed: everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(sys.getdefaultencoding(), "replace")
