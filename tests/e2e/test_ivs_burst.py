"""IVS mode as separate processes: two `serve` replicas sharing one Redis budget.

The emulator enforces CreateParticipantToken's 50 per second (quotas on). A burst of
200 concurrent token requests through both replicas must never let an upstream
throttle reach a client: each answer is 201 or 503 with Retry-After, and the
emulator never had to throttle.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support.processes import background, create_stage, wait_for_http
from tests.support.redis_server import free_port
from token_service.auth import mint_user_token

SECRET = "e2e-ivs-shared-secret-" + "q" * 32
BURST = 200

pytestmark = pytest.mark.slow


@pytest.fixture
def ivs_env(emulator_url: str, clean_redis: str, tmp_path: Path) -> dict[str, str]:
    return {
        "TOKEN_SERVICE_MODE": "ivs",
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator_url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_REDIS_URL": clean_redis,
        # No key exists here: ivs mode must start without one.
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path / "no-keys"),
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        # The burst is the point: the per-user, per-IP and per-stage limits stay out of it.
        "TOKEN_SERVICE_RATE_LIMIT_USER": "100000/second",
        "TOKEN_SERVICE_RATE_LIMIT_IP": "100000/second",
        "TOKEN_SERVICE_RATE_LIMIT_STAGE": "100000/second",
        # Long enough that the burst keeps the budget busy for about two seconds, so the
        # emulator's quota is pressed for more than one whole second.
        "TOKEN_SERVICE_IVS_TOKEN_MAX_WAIT_MS": "2000",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "TOKEN_SERVICE_LOG_LEVEL": "WARNING",
    }


async def _burst(bases: list[str], stage_arn: str) -> list[httpx.Response]:
    tokens = [mint_user_token(SECRET.encode(), sub=f"burst-{i}") for i in range(BURST)]
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(i: int) -> httpx.Response:
            return await client.post(
                f"{bases[i % len(bases)]}/v1/participant-tokens",
                json={"stageArn": stage_arn},
                headers={"Authorization": f"Bearer {tokens[i]}"},
            )

        return await asyncio.gather(*(one(i) for i in range(BURST)))


def test_burst_through_two_replicas_never_reaches_the_ivs_quota(
    emulator_url: str, ivs_env: dict[str, str]
) -> None:
    stage_arn = create_stage(emulator_url, "burst")
    ports = [free_port(), free_port()]
    with (
        background("serve", "--port", str(ports[0]), env=ivs_env) as first,
        background("serve", "--port", str(ports[1]), env=ivs_env) as second,
    ):
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        wait_for_http(f"{bases[0]}/healthz", proc=first)
        wait_for_http(f"{bases[1]}/healthz", proc=second)
        responses = asyncio.run(_burst(bases, stage_arn))

    unexpected = [r.text for r in responses if r.status_code not in {201, 503}]
    assert not unexpected
    refused = [r for r in responses if r.status_code == 503]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    issued = [r.json() for r in responses if r.status_code == 201]
    assert issued
    assert all(body["signer"] == "ivs" and body["keyArn"] is None for body in issued)
    stats = httpx.get(f"{emulator_url}/_emulator/stats", timeout=5).json()["operations"]
    calls = stats["CreateParticipantToken"]
    # More than one second's quota was asked of IVS, so the budget was pressed, not idle...
    assert calls["calls"] > 50
    # ...and IVS never had to throttle: the budget kept every second under its quota.
    assert calls["throttled"] == 0
    assert calls["maxPerSecond"] <= 50


def test_refusals_of_the_budget_say_so_and_when_to_come_back(
    emulator_url: str, ivs_env: dict[str, str]
) -> None:
    stage_arn = create_stage(emulator_url, "burst")
    env = {
        **ivs_env,
        "TOKEN_SERVICE_IVS_TOKEN_RATE": "1/minute",
        "TOKEN_SERVICE_IVS_TOKEN_MAX_WAIT_MS": "0",
    }
    port = free_port()
    with background("serve", "--port", str(port), env=env) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/healthz", proc=proc)
        first, second = [
            httpx.post(
                f"{base}/v1/participant-tokens",
                json={"stageArn": stage_arn},
                headers={"Authorization": f"Bearer {mint_user_token(SECRET.encode(), sub=sub)}"},
                timeout=10,
            )
            for sub in ("first", "second")
        ]

    assert first.status_code == 201
    assert second.status_code == 503
    assert second.json()["type"].endswith("/ivs-budget-exhausted")
    assert 50 <= int(second.headers["Retry-After"]) <= 60
