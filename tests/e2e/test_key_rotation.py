"""Key rotation across two `serve` processes sharing Redis and a keys directory.

The emulator (in-process, over HTTP) plays IVS: it holds at most three public keys
and checks each token's key at join, as IVS does. Nothing here asserts timing:
every wait polls with a generous deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import CLI, run_cli, wait_for_http
from tests.support.redis_server import free_port
from token_service.auth import mint_user_token

SECRET = "e2e-rotation-secret-" + "r" * 32
ADMIN = {"Authorization": "Bearer e2e-admin-token-0123456789"}
DEADLINE = 30.0


def poll(check: Callable[[], Any], deadline: float = DEADLINE, what: str = "condition") -> Any:
    """The first truthy result of `check`, retried until the deadline."""
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"{what} not reached within {deadline}s")
        time.sleep(0.2)


@pytest.fixture
def env(emulator: Any, tmp_path: Path, clean_redis: str) -> dict[str, str]:
    return {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator.url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path / "keys"),
        "TOKEN_SERVICE_REDIS_URL": clean_redis,
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN["Authorization"].removeprefix("Bearer "),
        "TOKEN_SERVICE_KEY_REFRESH_SECONDS": "0.5",
        "TOKEN_SERVICE_LOG_FORMAT": "json",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }


@pytest.fixture
def stage_arn(ivs_client: Any) -> str:
    return str(ivs_client.create_stage(name="rotation")["stage"]["arn"])


class Replica:
    def __init__(self, base: str, proc: subprocess.Popen[str], log: Path) -> None:
        self.base = base
        self.proc = proc
        self.log = log

    def issue(self, stage_arn: str) -> dict[str, Any]:
        token = mint_user_token(SECRET.encode(), sub="viewer", roles=[])
        response = httpx.post(
            f"{self.base}/v1/participant-tokens",
            json={"stageArn": stage_arn},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def admin(self, method: str, path: str) -> httpx.Response:
        return httpx.request(method, f"{self.base}/admin/keys{path}", headers=ADMIN, timeout=30)

    def key_list(self) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = self.admin("GET", "/").json()["keys"]
        return keys


@pytest.fixture
def start_replicas(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., list[Replica]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(count: int = 2, **extra: str) -> list[Replica]:
        replicas = []
        for _ in range(count):
            port = free_port()
            # Output to a file, not a pipe: a pipe nobody reads fills up and stalls the server.
            log = tmp_path / f"serve-{port}.log"
            with log.open("w") as out:
                proc = subprocess.Popen(
                    [*CLI, "serve", "--port", str(port)],
                    env={**os.environ, **env, **extra},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            procs.append(proc)
            replicas.append(Replica(f"http://127.0.0.1:{port}", proc, log))
        for replica in replicas:
            wait_for_http(f"{replica.base}/healthz", proc=replica.proc)
        return replicas

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def join(emulator: Any, token: str) -> httpx.Response:
    return httpx.post(f"{emulator.url}/_emulator/join", json={"token": token}, timeout=5)


def bootstrap(env: dict[str, str]) -> None:
    result = run_cli("keys", "rotate", env=env)
    assert result.returncode == 0, result.stderr


def test_rotation_through_one_replica_reaches_both_and_old_tokens_still_join(
    env: dict[str, str], start_replicas: Callable[..., list[Replica]], stage_arn: str, emulator: Any
) -> None:
    bootstrap(env)
    first, second = start_replicas()
    before = second.issue(stage_arn)
    rotated = first.admin("POST", "/rotate")
    assert rotated.status_code == 201, rotated.text
    new_arn = rotated.json()["arn"]
    assert new_arn != before["keyArn"]
    for replica in (first, second):
        poll(lambda r=replica: r.issue(stage_arn)["keyArn"] == new_arn, what="new key signing")
    assert join(emulator, before["token"]).status_code == 200
    assert join(emulator, second.issue(stage_arn)["token"]).status_code == 200


def test_deleting_the_retiring_key_before_its_safe_time_is_409_on_any_replica(
    env: dict[str, str], start_replicas: Callable[..., list[Replica]], stage_arn: str, emulator: Any
) -> None:
    bootstrap(env)
    first, second = start_replicas()
    old = first.issue(stage_arn)
    assert first.admin("POST", "/rotate").status_code == 201
    retiring = poll(
        lambda: [k for k in second.key_list() if k["status"] == "retiring"],
        what="retiring on second",
    )[0]
    refused = second.admin("DELETE", f"/{retiring['name']}")
    assert refused.status_code == 409
    assert retiring["safeToDeleteAt"] in refused.json()["detail"]
    assert join(emulator, old["token"]).status_code == 200


@pytest.mark.slow
def test_after_the_safe_time_delete_succeeds_and_its_tokens_stop_joining(
    env: dict[str, str],
    start_replicas: Callable[..., list[Replica]],
    stage_arn: str,
    emulator: Any,
    tmp_path: Path,
) -> None:
    # The shortest lifetime a policy can grant (1 minute) and no extra margin: the
    # retiring key is safe to delete one minute after rotation.
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[rules]]\nname = "short"\ncapabilities = ["SUBSCRIBE"]\n'
        "duration = { default = 1, max = 1 }\n"
    )
    short = {
        "TOKEN_SERVICE_POLICY_FILE": str(policy),
        "TOKEN_SERVICE_KEY_DELETE_MARGIN_SECONDS": "0",
    }
    bootstrap({**env, **short})
    first, second = start_replicas(**short)
    old = first.issue(stage_arn)
    assert first.admin("POST", "/rotate").status_code == 201
    retiring = poll(lambda: [k for k in second.key_list() if k["status"] == "retiring"])[0]
    assert second.admin("DELETE", f"/{retiring['name']}").status_code == 409
    deleted = poll(
        lambda: second.admin("DELETE", f"/{retiring['name']}").status_code == 200,
        deadline=150,
        what="delete after the safe time",
    )
    assert deleted
    rejected = join(emulator, old["token"])
    assert rejected.status_code >= 400
    # The other replica follows: it no longer lists the deleted key.
    poll(lambda: retiring["name"] not in {k["name"] for k in first.key_list()})


def test_revoke_makes_old_key_tokens_fail_at_join_at_once(
    env: dict[str, str], start_replicas: Callable[..., list[Replica]], stage_arn: str, emulator: Any
) -> None:
    bootstrap(env)
    first, second = start_replicas()
    issued = [first.issue(stage_arn), second.issue(stage_arn), second.issue(stage_arn)]
    compromised = issued[0]["keyArn"]
    name = next(k["name"] for k in first.key_list() if k["arn"] == compromised)
    revoked = first.admin("POST", f"/{name}/revoke")
    assert revoked.status_code == 200, revoked.text
    body = revoked.json()
    # Both replicas' tokens are counted: the revoking one asks the other to report.
    assert body["invalidatedTokens"] == 3
    assert body["active"]["arn"] != compromised
    for token in issued:
        assert join(emulator, token["token"]).status_code >= 400
    for replica in (first, second):
        poll(lambda r=replica: r.issue(stage_arn)["keyArn"] == body["active"]["arn"])


def test_rotation_with_three_keys_present_never_exceeds_ivs_limit(
    env: dict[str, str],
    start_replicas: Callable[..., list[Replica]],
    ivs_client: Any,
) -> None:
    bootstrap(env)
    first, second = start_replicas()
    assert first.admin("POST", "/rotate").status_code == 201
    assert second.admin("POST", "/rotate").status_code == 201
    refused = first.admin("POST", "/rotate")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "force=true" in detail
    assert "safe to delete at" in detail
    assert len(ivs_client.list_public_keys()["publicKeys"]) == 3
    # The documented way out: force-delete the oldest retiring key, then rotate.
    oldest = sorted(
        (k for k in second.key_list() if k["status"] == "retiring"), key=lambda k: k["retiredAt"]
    )[0]
    assert second.admin("DELETE", f"/{oldest['name']}?force=true").status_code == 200
    assert first.admin("POST", "/rotate").status_code == 201
    assert len(ivs_client.list_public_keys()["publicKeys"]) == 3


def test_a_prepared_next_key_is_promoted_without_another_import(
    env: dict[str, str], start_replicas: Callable[..., list[Replica]], emulator: Any
) -> None:
    bootstrap(env)
    _, second = start_replicas()
    prepared = run_cli("keys", "prepare", env=env)
    assert prepared.returncode == 0, prepared.stderr
    next_key = json.loads(prepared.stdout)
    assert next_key["status"] == "next"
    imports = httpx.get(f"{emulator.url}/_emulator/stats", timeout=5).json()["operations"][
        "ImportPublicKey"
    ]["calls"]
    poll(lambda: any(k["name"] == next_key["name"] for k in second.key_list()))
    rotated = second.admin("POST", "/rotate")
    assert rotated.json()["name"] == next_key["name"]
    stats = httpx.get(f"{emulator.url}/_emulator/stats", timeout=5).json()["operations"]
    assert stats["ImportPublicKey"]["calls"] == imports


def _audit_lines(replica: Replica) -> list[dict[str, Any]]:
    replica.proc.terminate()
    replica.proc.wait(timeout=10)
    output = replica.log.read_text()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "token_service.audit"]


def test_scheduled_rotation_runs_once_across_replicas(
    env: dict[str, str], start_replicas: Callable[..., list[Replica]], ivs_client: Any
) -> None:
    bootstrap(env)
    first, second = start_replicas(TOKEN_SERVICE_KEY_ROTATION_INTERVAL="3s")
    seen: set[str] = set()

    def rotated_twice() -> bool:
        keys = first.key_list()
        assert len(keys) <= 3
        # Signing now or before: the bootstrap key and every key a rotation activated.
        seen.update(k["name"] for k in keys if k["status"] in {"active", "retiring"})
        return len(seen) >= 3

    poll(rotated_twice, deadline=60, what="two scheduled rotations")
    assert len(ivs_client.list_public_keys()["publicKeys"]) <= 3
    lines = _audit_lines(first) + _audit_lines(second)
    rotations = [line["key"] for line in lines if line["event"] == "key_scheduled_rotated"]
    # Every scheduled rotation happened once, by one replica or the other.
    assert len(rotations) == len(set(rotations)) >= 2
    imports = [line["key"] for line in lines if line["event"] == "key_scheduled_prepared"]
    assert len(imports) == len(set(imports))


def test_serve_refuses_to_start_with_a_key_ivs_does_not_know_naming_its_file(
    env: dict[str, str], ivs_client: Any
) -> None:
    bootstrap(env)
    (meta,) = Path(env["TOKEN_SERVICE_KEYS_DIR"]).glob("*.json")
    ivs_client.delete_public_key(arn=json.loads(meta.read_text())["arn"])
    result = run_cli("serve", "--port", str(free_port()), env=env, timeout=60)
    assert result.returncode == 2
    assert str(meta) in result.stderr
    assert "IVS does not know" in result.stderr
