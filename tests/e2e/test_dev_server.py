"""`serve --dev`: a newcomer pastes the printed curl and gets a token that joins."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.processes import background
from tests.support.redis_server import free_port
from tests.support.tools import needs_tool


def _read_banner(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    separators = 0
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError("serve --dev exited early:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("=" * 20):
            separators += 1
            if separators == 3:
                return "".join(lines)
    raise AssertionError("no banner within the timeout:\n" + "".join(lines))


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the dev server did not come up")


@needs_tool("curl", "the printed command is pasted as a newcomer would")
def test_printed_curl_returns_201_and_the_token_joins() -> None:
    port = free_port()
    env = {"TOKEN_SERVICE_REDIS_URL": "", "TOKEN_SERVICE_LOG_FORMAT": "text"}
    with background("serve", "--dev", "--port", str(port), env=env) as proc:
        banner = _read_banner(proc)
        _wait_ready(f"http://127.0.0.1:{port}")
        curl = banner[
            banner.index("curl -sS -X POST") : banner.index(
                "\n\n", banner.index("curl -sS -X POST")
            )
        ]
        result = subprocess.run(
            ["bash", "-c", curl + " -w '\\n%{http_code}'"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        body, status = result.stdout.rsplit("\n", 1)
        assert status == "201", result.stdout + result.stderr
        token = json.loads(body)["token"]
        emulator = re.search(r"IVS emulator\s+(http://\S+)", banner)
        assert emulator is not None
        joined = httpx.post(f"{emulator.group(1)}/_emulator/join", json={"token": token}, timeout=5)
        assert joined.status_code == 200, joined.text


def test_printed_user_token_command_mints_a_jwt_the_dev_server_accepts(tmp_path: Path) -> None:
    port = free_port()
    env = {"TOKEN_SERVICE_REDIS_URL": "", "TOKEN_SERVICE_LOG_FORMAT": "text"}
    with background("serve", "--dev", "--port", str(port), env=env) as proc:
        banner = _read_banner(proc)
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        command = re.search(r"^  (.*token-service user-token .*)$", banner, re.MULTILINE)
        assert command is not None, banner
        stage = re.search(r"demo stage\s+(\S+)", banner)
        assert stage is not None

        minted = subprocess.run(
            ["bash", "-c", command.group(1)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            # A new shell: nothing of the server's environment, the venv not on PATH.
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert minted.returncode == 0, minted.stderr
        response = httpx.post(
            f"{base}/v1/participant-tokens",
            json={"stageArn": stage.group(1)},
            headers={"Authorization": f"Bearer {minted.stdout.strip()}"},
            timeout=10,
        )

        assert response.status_code == 201, response.text
        assert response.json()["userId"] == "alice"
