"""An app user is (issuer, subject), everywhere (issue 19, item 9).

With a shared secret and OIDC configured together, `alice` from the identity provider and
`alice` from a shared-secret token (no issuer) are two users: one cannot exchange the
other's participant token, and each has a rate-limit bucket of its own. Removing the issuer
from the exchange's ownership check or from the limiter's user key fails these tests.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.jwks_server import JwksServer, running_jwks_server
from token_service.auth import mint_user_token
from token_service.bootstrap.app import create_app
from token_service.config import load_settings

SHARED_SECRET = "identity-shared-secret-" + "i" * 32
ISSUER = "https://idp.example.com/"
AUDIENCE = "token-service"
KID = "idp-key"
SUB = "alice"
URL = "/v1/participant-tokens"
Client = AsyncTestClient[Litestar]


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def idp(idp_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(idp_key.public_key(), as_dict=True)
    with running_jwks_server([{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]) as server:
        yield server


@asynccontextmanager
async def _service(
    module_env: dict[str, str], module_ivs: Any, idp: JwksServer, user_limit: str
) -> AsyncIterator[Client]:
    settings = load_settings(
        module_env
        | {
            "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
            "TOKEN_SERVICE_AUTH_JWKS_URL": idp.url,
            "TOKEN_SERVICE_AUTH_ISSUER": ISSUER,
            "TOKEN_SERVICE_AUTH_AUDIENCE": AUDIENCE,
            "TOKEN_SERVICE_RATE_LIMIT_USER": user_limit,
            "TOKEN_SERVICE_RATE_LIMIT_IP": "1000/second",
        }
    )
    async with AsyncTestClient(app=create_app(settings, ivs_client=module_ivs)) as test_client:
        yield test_client


@pytest_asyncio.fixture(loop_scope="module")
async def client(
    module_env: dict[str, str], module_ivs: Any, idp: JwksServer
) -> AsyncIterator[Client]:
    """Limits out of the way: the exchange tests are about ownership."""
    async with _service(module_env, module_ivs, idp, "1000/second") as test_client:
        yield test_client


@pytest_asyncio.fixture(loop_scope="module")
async def strict_client(
    module_env: dict[str, str], module_ivs: Any, idp: JwksServer
) -> AsyncIterator[Client]:
    """One token per user and minute: a user's second ask is a 429."""
    async with _service(module_env, module_ivs, idp, "1/minute") as test_client:
        yield test_client


def _from_the_idp(key: rsa.RSAPrivateKey) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": SUB, "iat": now, "exp": now + 600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


def _from_the_shared_secret() -> str:
    return mint_user_token(SHARED_SECRET.encode(), sub=SUB, roles=[], ttl_seconds=600)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.asyncio(loop_scope="module")
async def test_the_same_subject_from_another_issuer_cannot_exchange_the_participant(
    client: Client, stage_arn: str, idp_key: rsa.RSAPrivateKey
) -> None:
    issued = await client.post(
        URL, json={"stageArn": stage_arn}, headers=_bearer(_from_the_idp(idp_key))
    )
    assert issued.status_code == 201, issued.text
    participant = issued.json()["participantId"]

    exchanged = await client.post(
        f"{URL}/{participant}/exchange", json={}, headers=_bearer(_from_the_shared_secret())
    )

    assert exchanged.status_code == 404
    owner = await client.post(
        f"{URL}/{participant}/exchange", json={}, headers=_bearer(_from_the_idp(idp_key))
    )
    assert owner.status_code == 200, owner.text


@pytest.mark.asyncio(loop_scope="module")
async def test_the_same_subject_from_two_issuers_has_two_rate_limit_buckets(
    strict_client: Client, stage_arn: str, idp_key: rsa.RSAPrivateKey
) -> None:
    from_idp = await strict_client.post(
        URL, json={"stageArn": stage_arn}, headers=_bearer(_from_the_idp(idp_key))
    )
    from_secret = await strict_client.post(
        URL, json={"stageArn": stage_arn}, headers=_bearer(_from_the_shared_secret())
    )
    again_from_idp = await strict_client.post(
        URL, json={"stageArn": stage_arn}, headers=_bearer(_from_the_idp(idp_key))
    )

    assert (from_idp.status_code, from_secret.status_code) == (201, 201)
    assert again_from_idp.status_code == 429
