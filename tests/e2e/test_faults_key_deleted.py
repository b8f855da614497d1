"""The active signing key deleted at IVS behind the service's back (local mode).

Someone calls DeletePublicKey directly (console, CLI, another tool) while `serve`
keeps issuing. IVS then refuses every token signed with that key at join time, the
ones already handed out included: nothing can save those. What the service must do:
notice within TOKEN_SERVICE_KEY_IVS_CHECK_SECONDS (1 s here), stop handing out
tokens that cannot join (503 with Retry-After, readiness 503 on `signingKey`, an
error log line saying which key and what to run), and sign again once the operator
rotates, without a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.support.fault_load import (
    ServeProcess,
    long_fault_run,
    request_token,
    serve_process,
    wait_until,
)
from tests.support.processes import create_stage, run_cli
from token_service.auth import mint_user_token

SECRET = "faults-key-secret-" + "k" * 32

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def env(emulator_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator_url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path / "keys"),
        "TOKEN_SERVICE_KEY_IVS_CHECK_SECONDS": "1",
        "TOKEN_SERVICE_KEY_REFRESH_SECONDS": "0.5",
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "TOKEN_SERVICE_RATE_LIMIT_USER": "1000/second",
        "TOKEN_SERVICE_RATE_LIMIT_IP": "1000/second",
        "TOKEN_SERVICE_LOG_FORMAT": "json",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }


@pytest.fixture
def service(
    emulator_url: str, env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[ServeProcess, str, str]]:
    rotated = run_cli("keys", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    key_arn = str(json.loads(rotated.stdout)["arn"])
    stage_arn = create_stage(emulator_url, "key-deleted")
    with serve_process(env, tmp_path / "serve.log") as serving:
        yield serving, stage_arn, key_arn


def issue(serving: ServeProcess, stage_arn: str) -> tuple[int | None, dict[str, Any], str | None]:
    bearer = mint_user_token(SECRET.encode(), sub="key-user")
    status, _, body, retry_after, _ = request_token(serving.base, {"stageArn": stage_arn}, bearer)
    return status, body, retry_after


def joins(emulator_url: str, token: str) -> httpx.Response:
    return httpx.post(f"{emulator_url}/_emulator/join", json={"token": token}, timeout=5)


def delete_at_ivs(emulator_url: str, key_arn: str) -> None:
    ivs = boto3.client(
        "ivs-realtime",
        endpoint_url=emulator_url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    ivs.delete_public_key(arn=key_arn)


@long_fault_run
def test_a_key_deleted_at_ivs_stops_issuing_with_503_and_fails_readiness(
    service: tuple[ServeProcess, str, str], emulator_url: str
) -> None:
    serving, stage_arn, key_arn = service
    status, before, _ = issue(serving, stage_arn)
    assert status == 201
    assert joins(emulator_url, before["token"]).status_code == 200

    delete_at_ivs(emulator_url, key_arn)
    deleted = time.monotonic()

    # IVS's own rule: tokens of a deleted key no longer join, even unused ones.
    assert joins(emulator_url, before["token"]).status_code != 200
    dead: list[int] = []

    def refused() -> bool:
        status, body, _ = issue(serving, stage_arn)
        if status == 201:
            dead.append(joins(emulator_url, body["token"]).status_code)
        return status == 503

    wait_until(refused, timeout=20, what="503 after delete")
    print(
        f"KEY-RUN 503 after {time.monotonic() - deleted:.2f}s; "
        f"{len(dead)} tokens issued meanwhile, join statuses {sorted(set(dead))}"
    )
    status, body, retry_after = issue(serving, stage_arn)
    assert status == 503
    assert retry_after
    assert "token" not in body
    ready = httpx.get(f"{serving.base}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["checks"]["signingKey"] != "ok"
    assert '"event": "signing_key_unregistered"' in serving.output()


@long_fault_run
def test_after_a_key_deleted_at_ivs_a_rotation_signs_again_without_a_restart(
    service: tuple[ServeProcess, str, str], emulator_url: str, env: dict[str, str]
) -> None:
    serving, stage_arn, key_arn = service
    delete_at_ivs(emulator_url, key_arn)
    wait_until(lambda: issue(serving, stage_arn)[0] == 503, timeout=20, what="503 after delete")

    rotated = run_cli("keys", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr

    def issued_with_the_new_key() -> dict[str, Any] | None:
        status, body, _ = issue(serving, stage_arn)
        return body if status == 201 and body["keyArn"] != key_arn else None

    body = wait_until(issued_with_the_new_key, timeout=20, what="a token of the new key")
    assert joins(emulator_url, body["token"]).status_code == 200
    assert httpx.get(f"{serving.base}/readyz", timeout=10).status_code == 200
    assert serving.proc.poll() is None
