"""The identity provider's JWKS endpoint down or slow, under a real `serve` process (OIDC).

The provider is `tests/support/jwks_server.py`, a real HTTP server on a loopback port,
closed (connection refused) or holding every request (a slow provider) while app
users keep asking for tokens. Keys the service already fetched keep verifying app
tokens, so tokens keep being issued; a token signed with a key the service has never
seen is refused with 401 within a bounded time, whatever the provider does; once the
provider is back, its new key is picked up without a restart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.fault_load import (
    ServeProcess,
    long_fault_run,
    request_token,
    serve_process,
    wait_until,
)
from tests.support.jwks_server import JwksServer, running_jwks_server
from tests.support.processes import create_stage, run_cli

ISSUER = "https://idp.faults.example"
AUDIENCE = "ivs-token-service"
#: How long a request with a never-seen key may take while the provider is down or
#: slow: the service's own bound plus headroom for a busy 2-core machine.
UNKNOWN_KEY_BOUND = 5.0
REFRESH_SECONDS = 10

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def known_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid, "alg": "RS256", "use": "sig"}


def app_token(key: rsa.RSAPrivateKey, kid: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"oidc-{uuid.uuid4().hex[:8]}",
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def provider(known_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    with running_jwks_server([jwk(known_key, "known")]) as server:
        yield server


@pytest.fixture
def service(
    emulator_url: str, tmp_path: Path, provider: JwksServer
) -> Iterator[tuple[ServeProcess, str]]:
    env = {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator_url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path / "keys"),
        "TOKEN_SERVICE_AUTH_JWKS_URL": provider.url,
        "TOKEN_SERVICE_AUTH_ISSUER": ISSUER,
        "TOKEN_SERVICE_AUTH_AUDIENCE": AUDIENCE,
        "TOKEN_SERVICE_AUTH_ALGORITHMS": "RS256",
        "TOKEN_SERVICE_AUTH_JWKS_REFRESH_SECONDS": str(REFRESH_SECONDS),
        "TOKEN_SERVICE_RATE_LIMIT_IP": "1000/second",
        "TOKEN_SERVICE_LOG_FORMAT": "json",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    assert run_cli("keys", "rotate", env=env).returncode == 0
    stage_arn = create_stage(emulator_url, "jwks-faults")
    with serve_process(env, tmp_path / "serve.log") as serving:
        yield serving, stage_arn


def issue(service: ServeProcess, stage_arn: str, token: str) -> tuple[int | None, float]:
    status, seconds, *_ = request_token(service.base, {"stageArn": stage_arn}, token)
    return status, seconds


@long_fault_run
def test_provider_down_known_key_keeps_issuing_and_a_new_key_is_401_quickly(
    service: tuple[ServeProcess, str],
    provider: JwksServer,
    known_key: rsa.RSAPrivateKey,
    new_key: rsa.RSAPrivateKey,
) -> None:
    serving, stage_arn = service
    assert issue(serving, stage_arn, app_token(known_key, "known"))[0] == 201
    provider.go_down()
    for _ in range(5):
        assert issue(serving, stage_arn, app_token(known_key, "known"))[0] == 201
    status, seconds = issue(serving, stage_arn, app_token(new_key, "new"))
    print(f"JWKS-RUN provider down: new key {status} in {seconds:.3f}s")
    assert status == 401
    assert seconds < UNKNOWN_KEY_BOUND
    assert serving.proc.poll() is None


@long_fault_run
def test_provider_slow_known_key_keeps_issuing_and_a_new_key_is_401_within_the_bound(
    service: tuple[ServeProcess, str],
    provider: JwksServer,
    known_key: rsa.RSAPrivateKey,
    new_key: rsa.RSAPrivateKey,
) -> None:
    serving, stage_arn = service
    assert issue(serving, stage_arn, app_token(known_key, "known"))[0] == 201
    provider.hold()
    try:
        for _ in range(5):
            status, seconds = issue(serving, stage_arn, app_token(known_key, "known"))
            assert status == 201
            assert seconds < UNKNOWN_KEY_BOUND
        status, seconds = issue(serving, stage_arn, app_token(new_key, "new"))
        print(f"JWKS-RUN provider slow: new key {status} in {seconds:.3f}s")
        assert status == 401
        assert seconds < UNKNOWN_KEY_BOUND
    finally:
        provider.release()


@long_fault_run
def test_provider_back_with_a_new_key_is_picked_up_without_a_restart(
    service: tuple[ServeProcess, str],
    provider: JwksServer,
    known_key: rsa.RSAPrivateKey,
    new_key: rsa.RSAPrivateKey,
) -> None:
    serving, stage_arn = service
    provider.go_down()
    assert issue(serving, stage_arn, app_token(new_key, "new"))[0] == 401
    provider.set_keys([jwk(known_key, "known"), jwk(new_key, "new")])
    provider.come_back()
    back = time.monotonic()
    wait_until(
        lambda: issue(serving, stage_arn, app_token(new_key, "new"))[0] == 201,
        timeout=30,
        what="the provider's new key accepted",
    )
    print(f"JWKS-RUN provider back: new key accepted after {time.monotonic() - back:.1f}s")
    assert issue(serving, stage_arn, app_token(known_key, "known"))[0] == 201
