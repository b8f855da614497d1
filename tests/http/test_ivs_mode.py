"""POST /v1/participant-tokens in ivs and auto modes, against the emulator over HTTP.

Tokens come from CreateParticipantToken; IVS's errors (injected with the emulator's
fault controls) reach the client as the contract's statuses, never as a 500 or as
AWS's own answer; the CreateParticipantToken budget refuses with 503 and
Retry-After, or falls back to local signing when configured and a key exists.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import bearer, emulator_stats, join
from token_service.bootstrap.app import create_app
from token_service.config import load_settings
from token_service.keys import SigningKey

TOKENS = "/v1/participant-tokens"

# The emulator's Retry-After for a throttle or quota refusal is ours, never AWS's.
MAPPED = {
    "ResourceNotFoundException": 404,
    "ValidationException": 400,
    "AccessDeniedException": 502,
    "PendingVerification": 502,
    "ServiceQuotaExceededException": 503,
    "InternalServerException": 502,
}


def inject(emulator: Any, operation: str = "CreateParticipantToken", **fault: Any) -> None:
    body = {"operation": operation, **fault}
    response = httpx.post(f"{emulator.url}/_emulator/faults", json=body, timeout=5)
    assert response.status_code == 200, response.text


@pytest.fixture
def ivs_env(env: dict[str, str], store_redis_url: str | None) -> dict[str, str]:
    """Every test twice: the budget and limits in memory, and in Redis, where the
    admission script takes the request's IVS budget slot in its own round trip."""
    if store_redis_url is None:
        return {**env, "TOKEN_SERVICE_MODE": "ivs"}
    return {**env, "TOKEN_SERVICE_MODE": "ivs", "TOKEN_SERVICE_REDIS_URL": store_redis_url}


@pytest.fixture
def app_for(
    make_app: Callable[..., Litestar],
) -> Callable[[dict[str, str]], AsyncTestClient[Litestar]]:
    def build(env: dict[str, str]) -> AsyncTestClient[Litestar]:
        return AsyncTestClient(app=make_app(settings=load_settings(env)))

    return build


@pytest.fixture
async def ivs(
    ivs_env: dict[str, str], app_for: Callable[[dict[str, str]], AsyncTestClient[Litestar]]
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with app_for(ivs_env) as test_client:
        yield test_client


async def request_token(client: AsyncTestClient[Litestar], token: str, stage_arn: str) -> Any:
    return await client.post(TOKENS, json={"stageArn": stage_arn}, headers=bearer(token))


# ------------------------------------------------------------------ issuing


async def test_ivs_mode_token_is_accepted_by_the_emulator_join(
    ivs, emulator, stage_arn, user_token
) -> None:
    response = await ivs.post(
        TOKENS,
        json={"stageArn": stage_arn, "capabilities": ["SUBSCRIBE"], "durationMinutes": 30},
        headers=bearer(user_token(sub="ivs-user")),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    joined = join(emulator, body["token"])
    assert joined.status_code == 200, joined.text
    assert joined.json()["participantId"] == body["participantId"]
    assert joined.json()["userId"] == "ivs-user"
    assert joined.json()["capabilities"] == ["SUBSCRIBE"]


async def test_ivs_mode_response_says_ivs_signed_it_with_no_key(ivs, stage_arn, user_token) -> None:
    response = await request_token(ivs, user_token(), stage_arn)

    body = response.json()
    assert body["signer"] == "ivs"
    assert body["keyArn"] is None
    assert response.headers["Cache-Control"] == "no-store"


async def test_ivs_mode_expiration_time_is_the_one_ivs_set(ivs, stage_arn, user_token) -> None:
    response = await ivs.post(
        TOKENS, json={"stageArn": stage_arn, "durationMinutes": 45}, headers=bearer(user_token())
    )

    body = response.json()
    # The emulator's token is a JWT whose exp is IVS's expirationTime.
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    expected = datetime.fromtimestamp(claims["exp"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["expirationTime"] == expected
    assert body["durationMinutes"] == 45


async def test_ivs_mode_calls_create_participant_token_once_and_never_get_stage(
    ivs, emulator, stage_arn, user_token
) -> None:
    await request_token(ivs, user_token(), stage_arn)

    stats = emulator_stats(emulator)
    assert stats["CreateParticipantToken"]["calls"] == 1
    assert stats.get("GetStage", {"calls": 0})["calls"] == 0


async def test_ivs_mode_unknown_stage_is_404(ivs, user_token) -> None:
    arn = "arn:aws:ivs:us-east-1:123456789012:stage/NoSuchStage9"

    response = await request_token(ivs, user_token(), arn)

    assert response.status_code == 404
    assert response.json()["type"].endswith("/stage-not-found")


# ------------------------------------------------------------------ IVS errors


@pytest.mark.parametrize(("error", "status"), sorted(MAPPED.items()))
async def test_ivs_error_reaches_the_client_as_its_mapped_status(
    ivs, emulator, stage_arn, user_token, error, status
) -> None:
    inject(emulator, errorRate=1.0, error=error)

    response = await request_token(ivs, user_token(), stage_arn)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_ivs_validation_error_carries_ivs_message(
    ivs, emulator, stage_arn, user_token
) -> None:
    inject(emulator, errorRate=1.0, error="ValidationException")

    response = await request_token(ivs, user_token(), stage_arn)

    assert "Injected fault: ValidationException" in response.json()["detail"]


@pytest.mark.parametrize("error", ["AccessDeniedException", "PendingVerification"])
async def test_ivs_refusal_does_not_show_the_aws_answer_to_the_client(
    ivs, emulator, stage_arn, user_token, error
) -> None:
    inject(emulator, errorRate=1.0, error=error)

    response = await request_token(ivs, user_token(), stage_arn)

    assert "Injected fault" not in response.text
    assert response.json()["type"].endswith("/upstream-failed")


async def test_ivs_access_denied_tells_the_operator_which_permission(
    ivs, emulator, stage_arn, user_token, caplog
) -> None:
    inject(emulator, errorRate=1.0, error="AccessDeniedException")

    with caplog.at_level(logging.ERROR, logger="token_service.ivs.client"):
        await request_token(ivs, user_token(), stage_arn)

    lines = [r.getMessage() for r in caplog.records if r.name == "token_service.ivs.client"]
    assert any("ivs:CreateParticipantToken" in line for line in lines), lines


async def test_ivs_pending_verification_tells_the_operator_about_the_account(
    ivs, emulator, stage_arn, user_token, caplog
) -> None:
    inject(emulator, errorRate=1.0, error="PendingVerification")

    with caplog.at_level(logging.ERROR, logger="token_service.ivs.client"):
        await request_token(ivs, user_token(), stage_arn)

    lines = [r.getMessage() for r in caplog.records if r.name == "token_service.ivs.client"]
    assert any("pending verification" in line for line in lines), lines


async def test_ivs_quota_exceeded_after_retries_is_503_with_retry_after(
    ivs, emulator, stage_arn, user_token
) -> None:
    inject(emulator, errorRate=1.0, error="ServiceQuotaExceededException")

    response = await request_token(ivs, user_token(), stage_arn)

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert emulator_stats(emulator)["CreateParticipantToken"]["calls"] == 3


async def test_ivs_throttling_after_retries_is_503_with_retry_after(
    ivs, emulator, stage_arn, user_token
) -> None:
    inject(emulator, throttleRate=1.0)

    response = await request_token(ivs, user_token(), stage_arn)

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["type"].endswith("/ivs-throttled")
    assert "Rate exceeded" not in response.text


async def test_ivs_throttling_is_retried_up_to_the_attempt_budget(
    ivs_env, app_for, emulator, stage_arn, user_token
) -> None:
    inject(emulator, throttleRate=1.0)

    async with app_for({**ivs_env, "TOKEN_SERVICE_IVS_MAX_ATTEMPTS": "2"}) as client:
        await request_token(client, user_token(), stage_arn)

    assert emulator_stats(emulator)["CreateParticipantToken"]["throttled"] == 2


async def test_ivs_read_timeout_is_504_with_retry_after(
    ivs_env, emulator, stage_arn, user_token, monkeypatch
) -> None:
    inject(emulator, latencyMs=2000)
    env = {
        **ivs_env,
        "TOKEN_SERVICE_IVS_READ_TIMEOUT_SECONDS": "0.2",
        "TOKEN_SERVICE_IVS_MAX_ATTEMPTS": "1",
    }
    # The service's own boto3 client, built from these settings (the emulator takes any key).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")

    async with AsyncTestClient(app=create_app(load_settings(env))) as client:
        response = await request_token(client, user_token(), stage_arn)

    assert response.status_code == 504
    assert response.json()["type"].endswith("/upstream-timeout")
    assert int(response.headers["Retry-After"]) >= 1


async def test_ivs_call_deadline_bounds_every_attempt_together(
    ivs_env, app_for, emulator, stage_arn, user_token
) -> None:
    inject(emulator, latencyMs=3000)
    env = {**ivs_env, "TOKEN_SERVICE_IVS_DEADLINE_SECONDS": "0.3"}

    async with app_for(env) as client:
        response = await request_token(client, user_token(), stage_arn)

    assert response.status_code == 504
    assert emulator_stats(emulator)["CreateParticipantToken"]["calls"] == 1


# ------------------------------------------------------------------ the budget


def _tight_budget(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "TOKEN_SERVICE_IVS_TOKEN_RATE": "1/minute",
        "TOKEN_SERVICE_IVS_TOKEN_MAX_WAIT_MS": "0",
    }


async def test_budget_exhausted_is_503_with_retry_after_and_no_ivs_call(
    ivs_env, app_for, emulator, stage_arn, user_token
) -> None:
    async with app_for(_tight_budget(ivs_env)) as client:
        await request_token(client, user_token(sub="a"), stage_arn)
        refused = await request_token(client, user_token(sub="b"), stage_arn)

    assert refused.status_code == 503
    assert refused.json()["type"].endswith("/ivs-budget-exhausted")
    assert int(refused.headers["Retry-After"]) >= 50
    assert emulator_stats(emulator)["CreateParticipantToken"]["calls"] == 1


async def test_budget_waits_for_a_slot_within_the_max_wait(
    ivs_env, app_for, emulator, stage_arn, user_token
) -> None:
    env = {
        **ivs_env,
        "TOKEN_SERVICE_IVS_TOKEN_RATE": "20/second",
        "TOKEN_SERVICE_IVS_TOKEN_MAX_WAIT_MS": "1000",
    }

    async with app_for(env) as client:
        responses = [
            await request_token(client, user_token(sub=f"u{i}"), stage_arn) for i in range(3)
        ]

    assert [r.status_code for r in responses] == [201, 201, 201]


async def test_fallback_signs_locally_once_the_budget_is_exhausted(
    ivs_env, app_for, emulator, stage_arn, user_token, signing_key: SigningKey
) -> None:
    env = {**_tight_budget(ivs_env), "TOKEN_SERVICE_IVS_FALLBACK_TO_LOCAL": "true"}

    async with app_for(env) as client:
        first = await request_token(client, user_token(sub="a"), stage_arn)
        second = await request_token(client, user_token(sub="b"), stage_arn)

    assert first.json()["signer"] == "ivs"
    assert second.status_code == 201
    assert second.json()["signer"] == "local"
    assert second.json()["keyArn"] == signing_key.arn
    assert join(emulator, second.json()["token"]).status_code == 200


async def test_fallback_without_a_signing_key_stays_503(
    ivs_env, app_for, stage_arn, user_token
) -> None:
    env = {**_tight_budget(ivs_env), "TOKEN_SERVICE_IVS_FALLBACK_TO_LOCAL": "true"}

    async with app_for(env) as client:
        await request_token(client, user_token(sub="a"), stage_arn)
        second = await request_token(client, user_token(sub="b"), stage_arn)

    assert second.status_code == 503
    assert "Retry-After" in second.headers


async def test_fallback_never_hides_an_ivs_refusal(
    ivs_env, app_for, emulator, stage_arn, user_token, signing_key: SigningKey
) -> None:
    inject(emulator, errorRate=1.0, error="AccessDeniedException")
    env = {**ivs_env, "TOKEN_SERVICE_IVS_FALLBACK_TO_LOCAL": "true"}

    async with app_for(env) as client:
        response = await request_token(client, user_token(), stage_arn)

    assert response.status_code == 502


# ------------------------------------------------------------------ auto mode


async def test_auto_mode_signs_locally_while_a_key_is_active(
    env, app_for, emulator, stage_arn, user_token, signing_key: SigningKey
) -> None:
    async with app_for({**env, "TOKEN_SERVICE_MODE": "auto"}) as client:
        response = await request_token(client, user_token(), stage_arn)

    assert response.json()["signer"] == "local"
    assert emulator_stats(emulator).get("CreateParticipantToken", {"calls": 0})["calls"] == 0


async def test_auto_mode_asks_ivs_without_a_key(
    env, app_for, emulator, stage_arn, user_token
) -> None:
    async with app_for({**env, "TOKEN_SERVICE_MODE": "auto"}) as client:
        response = await request_token(client, user_token(), stage_arn)

    assert response.status_code == 201
    assert response.json()["signer"] == "ivs"
    assert join(emulator, response.json()["token"]).status_code == 200


# ------------------------------------------------------------------ readiness and metrics


async def test_ivs_mode_readiness_needs_ivs_not_a_signing_key(ivs) -> None:
    response = await ivs.get("/readyz")

    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks["ivs"] == "ok"
    assert "signingKey" not in checks


async def test_ivs_mode_readiness_reports_ivs_degraded_while_ivs_refuses(ivs, emulator) -> None:
    """IVS is shared by every replica: failing them all would take the whole fleet out of
    the load balancer, exchanges and admin included (docs/operations.md, Health checks)."""
    inject(emulator, operation="ListStages", errorRate=1.0, error="AccessDeniedException")

    response = await ivs.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["states"]["ivs"] == "degraded"
    assert body["checks"]["ivs"] != "ok"


async def test_ivs_mode_readiness_asks_ivs_at_most_once_while_healthy(ivs, emulator) -> None:
    await ivs.get("/readyz")
    await ivs.get("/readyz")

    assert emulator_stats(emulator)["ListStages"]["calls"] == 1


async def test_metrics_count_ivs_calls_by_operation_and_outcome(
    ivs, emulator, stage_arn, user_token
) -> None:
    await request_token(ivs, user_token(sub="a"), stage_arn)
    inject(emulator, throttleRate=1.0)
    await request_token(ivs, user_token(sub="b"), stage_arn)

    text = (await ivs.get("/metrics")).text
    assert (
        'token_service_ivs_calls_total{operation="CreateParticipantToken",outcome="ok"} 1.0' in text
    )
    assert (
        'token_service_ivs_calls_total{operation="CreateParticipantToken",outcome="throttled"} 3.0'
        in text
    )


async def test_metrics_count_budget_refusals(ivs_env, app_for, stage_arn, user_token) -> None:
    async with app_for(_tight_budget(ivs_env)) as client:
        await request_token(client, user_token(sub="a"), stage_arn)
        await request_token(client, user_token(sub="b"), stage_arn)
        text = (await client.get("/metrics")).text

    decisions = "token_service_ivs_budget_decisions_total"
    budget = 'operation="CreateParticipantToken"'
    assert f'{decisions}{{{budget},outcome="immediate"}} 1.0' in text
    assert f'{decisions}{{{budget},outcome="refused"}} 1.0' in text


# ------------------------------------------------------------------ the budget in Redis


def script_calls(redis_url: str) -> int:
    """Script calls Redis has answered (EVALSHA and EVAL), not the commands run inside."""
    stats = redis.Redis.from_url(redis_url).info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


def budget_tat(redis_url: str) -> bytes | None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match="ts:ivs:*:budget:*"))
    assert len(keys) <= 1
    value: bytes | None = client.get(keys[0]) if keys else None
    return value


async def test_an_ivs_mode_token_costs_two_redis_round_trips_with_its_budget_slot(
    env, app_for, clean_redis, emulator, stage_arn, user_token
) -> None:
    ivs_redis = {**env, "TOKEN_SERVICE_MODE": "ivs", "TOKEN_SERVICE_REDIS_URL": clean_redis}
    async with app_for(ivs_redis) as client:
        await request_token(client, user_token(sub="warm"), stage_arn)
        before = script_calls(clean_redis)
        for i in range(5):
            response = await request_token(client, user_token(sub=f"u{i}"), stage_arn)
            assert response.status_code == 201
        calls = script_calls(clean_redis) - before

    # Admission with the budget slot, then the mapping record once IVS answered
    # (a separate slot reservation would make it 15).
    assert calls == 10
    assert emulator_stats(emulator)["CreateParticipantToken"]["calls"] == 6


async def test_a_rate_limited_request_takes_no_ivs_budget_slot(
    env, app_for, clean_redis, stage_arn, user_token
) -> None:
    ivs_redis = {
        **env,
        "TOKEN_SERVICE_MODE": "ivs",
        "TOKEN_SERVICE_REDIS_URL": clean_redis,
        "TOKEN_SERVICE_RATE_LIMIT_USER": "1/minute",
        "TOKEN_SERVICE_IVS_TOKEN_RATE": "1/minute",
    }
    async with app_for(ivs_redis) as client:
        token = user_token(sub="one-per-minute")
        first = await request_token(client, token, stage_arn)
        slot_after_first = budget_tat(clean_redis)
        limited = await request_token(client, token, stage_arn)

    assert first.status_code == 201
    assert limited.status_code == 429
    assert budget_tat(clean_redis) == slot_after_first
