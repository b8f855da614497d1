"""Readiness when a dependency fails, against a real `token-service serve` (issue 19, item 7).

Readiness tells the load balancer to send traffic to another replica. When IVS or Redis
is down, it is down for every replica: `/readyz` 503 on each took the whole fleet out of
the balancer, while this replica could still sign tokens for cached stages (and answer
the rest with a clear 503). Now a shared dependency's failure is reported as `degraded`
(200, in the body and the `token_service_readiness` gauge), and only what is this
replica's own (its key ring, its JWKS cache never filled) fails readiness.
docs/operations.md ("Health checks") has the reasoning per check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer

from tests.http.conftest import SHARED_SECRET, bearer, rotate_key
from tests.security.conftest import serving
from tests.support.redis_server import free_port
from token_service.auth import mint_user_token

pytestmark = pytest.mark.slow

URL = "/v1/participant-tokens"


class Down:
    """A served replica whose IVS has stopped, and the stage it issued for before."""

    def __init__(self, base: str, cached_stage: str, other_stage: str) -> None:
        self.base = base
        self.cached_stage = cached_stage
        self.other_stage = other_stage


def user() -> dict[str, str]:
    return bearer(mint_user_token(SHARED_SECRET.encode(), sub="ready-user", roles=["publisher"]))


def issue(base: str, stage_arn: str) -> httpx.Response:
    return httpx.post(f"{base}{URL}", json={"stageArn": stage_arn}, headers=user(), timeout=30)


def ready(base: str) -> httpx.Response:
    return httpx.get(f"{base}/readyz", timeout=30)


def gauge(base: str, check: str, status: str) -> str:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    prefix = f'token_service_readiness{{check="{check}",status="{status}"}} '
    return next(line.removeprefix(prefix) for line in text.splitlines() if line.startswith(prefix))


@pytest.fixture(scope="module")
def ivs_down(
    emulator_boto3_session: boto3.session.Session, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Down]:
    """Local mode with a key: one token issued (the stage's endpoints cached), then IVS
    stopped."""
    emulator = EmulatorServer(options=EmulatorOptions(quotas_enabled=False)).start()
    try:
        ivs: Any = emulator_boto3_session.client(
            "ivs-realtime",
            endpoint_url=emulator.url,
            config=BotoConfig(retries={"total_max_attempts": 1}),
        )
        keys_dir: Path = tmp_path_factory.mktemp("readiness") / "keys"
        rotate_key(ivs, keys_dir)
        cached = str(ivs.create_stage(name="cached")["stage"]["arn"])
        other = str(ivs.create_stage(name="never-asked")["stage"]["arn"])
        env = {
            "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator.url,
            "TOKEN_SERVICE_AWS_REGION": "us-east-1",
            "TOKEN_SERVICE_KEYS_DIR": str(keys_dir),
            "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
            "TOKEN_SERVICE_IVS_MAX_ATTEMPTS": "1",
        }
        with serving(env) as base:
            assert issue(base, cached).status_code == 201
            # Before any /readyz: a successful IVS probe is trusted for 30 s.
            emulator.stop(wait=True)
            yield Down(base, cached, other)
    finally:
        emulator.stop(wait=False)


# -- IVS down, local mode ---------------------------------------------------------------


def test_readiness_stays_200_reporting_ivs_degraded_while_ivs_is_down(ivs_down: Down) -> None:
    response = ready(ivs_down.base)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert body["states"] == {"signingKey": "ok", "ivs": "degraded"}
    assert body["checks"]["ivs"] != "ok"


def test_a_cached_stage_still_gets_tokens_while_ivs_is_down(ivs_down: Down) -> None:
    response = issue(ivs_down.base, ivs_down.cached_stage)

    assert response.status_code == 201, response.text
    assert response.json()["signer"] == "local"


def test_a_stage_never_resolved_gets_a_503_with_retry_after_while_ivs_is_down(
    ivs_down: Down,
) -> None:
    """What this replica cannot do, no other could: the client gets a clear answer from
    a replica, not a connection error from a balancer without targets."""
    response = issue(ivs_down.base, ivs_down.other_stage)

    assert response.status_code in {502, 503, 504}, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_readiness_gauge_shows_ivs_degraded(ivs_down: Down) -> None:
    ready(ivs_down.base)

    assert gauge(ivs_down.base, "ivs", "degraded") == "1.0"
    assert gauge(ivs_down.base, "ivs", "ok") == "0.0"
    assert gauge(ivs_down.base, "signingKey", "ok") == "1.0"


# -- IVS down, ivs mode ------------------------------------------------------------------


def test_ivs_mode_stays_ready_reporting_ivs_degraded_while_ivs_is_down() -> None:
    """No replica can call CreateParticipantToken then; taking them all out of the
    balancer would only turn every answer into a connection error."""
    env = {
        "TOKEN_SERVICE_MODE": "ivs",
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
        "TOKEN_SERVICE_IVS_MAX_ATTEMPTS": "1",
    }
    stage = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
    with serving(env) as base:
        response = ready(base)
        token = issue(base, stage)

    assert response.status_code == 200, response.text
    assert response.json()["states"] == {"ivs": "degraded"}
    assert token.status_code in {502, 503, 504}, token.text


# -- Redis down --------------------------------------------------------------------------


def _redis_down_env(module_env: dict[str, str]) -> dict[str, str]:
    return module_env | {
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
        "TOKEN_SERVICE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "TOKEN_SERVICE_REDIS_TIMEOUT_SECONDS": "0.2",
    }


def test_redis_down_with_local_fallbacks_is_degraded_and_still_issues(
    module_env: dict[str, str], stage_arn: str
) -> None:
    env = _redis_down_env(module_env) | {
        "TOKEN_SERVICE_RATE_LIMIT_ON_REDIS_ERROR": "local",
        "TOKEN_SERVICE_MAPPING_ON_REDIS_ERROR": "outbox",
    }
    with serving(env) as base:
        response = ready(base)
        token = issue(base, stage_arn)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "degraded"
    assert response.json()["states"]["redis"] == "degraded"
    assert token.status_code == 201, token.text


def test_redis_down_with_deny_is_degraded_too_as_no_replica_could_issue(
    module_env: dict[str, str], stage_arn: str
) -> None:
    """`TOKEN_SERVICE_MAPPING_ON_REDIS_ERROR=deny` (the default): nothing is issued while
    Redis is down, on any replica alike; the replica still answers 503 with Retry-After."""
    with serving(_redis_down_env(module_env)) as base:
        response = ready(base)
        token = issue(base, stage_arn)

    assert response.status_code == 200, response.text
    assert response.json()["states"]["redis"] == "degraded"
    assert token.status_code == 503, token.text
    assert "retry-after" in token.headers


# -- the JWKS, this replica's own cache ----------------------------------------------------


def _jwks_never_fetched_env(module_env: dict[str, str]) -> dict[str, str]:
    return module_env | {
        "TOKEN_SERVICE_AUTH_JWKS_URL": f"http://127.0.0.1:{free_port()}/jwks.json",
        "TOKEN_SERVICE_AUTH_ISSUER": "https://idp.example",
        "TOKEN_SERVICE_AUTH_AUDIENCE": "token-service",
    }


def test_a_jwks_never_fetched_fails_readiness_when_it_is_the_only_authentication(
    module_env: dict[str, str],
) -> None:
    """This replica can authenticate nobody; another that fetched the keys before can."""
    with serving(_jwks_never_fetched_env(module_env)) as base:
        response = ready(base)

    assert response.status_code == 503, response.text
    assert response.json()["status"] == "unavailable"
    assert response.json()["states"]["jwks"] == "failed"


def test_a_jwks_never_fetched_is_degraded_beside_a_shared_secret(
    module_env: dict[str, str], stage_arn: str
) -> None:
    env = _jwks_never_fetched_env(module_env) | {"TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET}
    with serving(env) as base:
        response = ready(base)
        token = issue(base, stage_arn)

    assert response.status_code == 200, response.text
    assert response.json()["states"]["jwks"] == "degraded"
    assert token.status_code == 201, token.text
