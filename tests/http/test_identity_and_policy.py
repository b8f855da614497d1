"""The token route with OIDC app users, a policy file, and pseudonymous user ids."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import SHARED_SECRET, bearer
from tests.support.jwks_server import JwksServer, running_jwks_server
from token_service.auth import mint_user_token
from token_service.config import load_settings
from token_service.policy import pseudonymize

pytestmark = pytest.mark.usefixtures("signing_key")
URL = "/v1/participant-tokens"
ISSUER = "https://idp.example.com/realms/app"
AUDIENCE = "ivs-token-service"
PSEUDONYM_SECRET = "pseudonym-secret-" + "p" * 32


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def _oidc_token(key: rsa.RSAPrivateKey, kid: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "oidc-user", "iat": now, "exp": now + 300}
    return jwt.encode({**payload, **claims}, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def idp(idp_key: rsa.RSAPrivateKey) -> Iterator[JwksServer]:
    with running_jwks_server([_jwk(idp_key, "k1")]) as server:
        yield server


@pytest.fixture
def oidc_app(idp: JwksServer, env: dict[str, str], make_app: Callable[..., Litestar]) -> Litestar:
    oidc_env = {k: v for k, v in env.items() if k != "TOKEN_SERVICE_AUTH_SHARED_SECRET"}
    oidc_env |= {
        "TOKEN_SERVICE_AUTH_JWKS_URL": idp.url,
        "TOKEN_SERVICE_AUTH_ISSUER": ISSUER,
        "TOKEN_SERVICE_AUTH_AUDIENCE": AUDIENCE,
        "TOKEN_SERVICE_AUTH_ROLES_CLAIM": "realm_access.roles",
    }
    return make_app(settings=load_settings(oidc_env))


async def test_oidc_user_with_publisher_role_gets_a_publish_token(
    oidc_app: Litestar, idp_key: rsa.RSAPrivateKey, stage_arn: str
) -> None:
    token = _oidc_token(idp_key, "k1", realm_access={"roles": ["publisher"]})
    async with AsyncTestClient(app=oidc_app) as client:
        response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert response.status_code == 201, response.text
    assert response.json()["userId"] == "oidc-user"
    assert response.json()["capabilities"] == ["PUBLISH", "SUBSCRIBE"]


async def test_oidc_key_rotated_at_the_provider_is_picked_up(
    oidc_app: Litestar, idp: JwksServer, idp_key: rsa.RSAPrivateKey, stage_arn: str
) -> None:
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with AsyncTestClient(app=oidc_app) as client:
        first = await client.post(
            URL, json={"stageArn": stage_arn}, headers=bearer(_oidc_token(idp_key, "k1"))
        )
        assert first.status_code == 201
        idp.set_keys([_jwk(idp_key, "k1"), _jwk(new_key, "k2")])
        second = await client.post(
            URL, json={"stageArn": stage_arn}, headers=bearer(_oidc_token(new_key, "k2"))
        )
    assert second.status_code == 201, second.text


async def test_oidc_token_with_the_wrong_audience_is_401(
    oidc_app: Litestar, idp_key: rsa.RSAPrivateKey, stage_arn: str
) -> None:
    token = _oidc_token(idp_key, "k1", aud="another-api")
    async with AsyncTestClient(app=oidc_app) as client:
        response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert response.status_code == 401


async def test_shared_secret_token_is_refused_when_only_oidc_is_configured(
    oidc_app: Litestar, stage_arn: str
) -> None:
    token = mint_user_token(SHARED_SECRET.encode(), sub="u")
    async with AsyncTestClient(app=oidc_app) as client:
        response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    assert response.status_code == 401


POLICY = """
[defaults.attributes]
client_keys = ["avatarUrl"]

[defaults.attributes.server]
displayName = "claim:name"

[[rules]]
name = "hosts"
roles = ["host"]
capabilities = ["PUBLISH", "SUBSCRIBE"]
duration = { default = 240, max = 480 }

[[rules]]
name = "viewers"
capabilities = ["SUBSCRIBE"]
"""


@pytest.fixture
def policy_app(tmp_path: Path, env: dict[str, str], make_app: Callable[..., Litestar]) -> Litestar:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return make_app(settings=load_settings({**env, "TOKEN_SERVICE_POLICY_FILE": str(path)}))


async def test_policy_file_rule_sets_capabilities_duration_and_claim_attributes(
    policy_app: Litestar, stage_arn: str
) -> None:
    token = mint_user_token(SHARED_SECRET.encode(), sub="h1", roles=["host"])
    # `name` is a claim in the app JWT; mint_user_token only sets sub and roles.
    token = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "name": "Hana Host"},
        SHARED_SECRET,
        algorithm="HS256",
    )
    async with AsyncTestClient(app=policy_app) as client:
        response = await client.post(
            URL,
            json={"stageArn": stage_arn, "attributes": {"avatarUrl": "https://a.example/h.png"}},
            headers=bearer(token),
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["capabilities"] == ["PUBLISH", "SUBSCRIBE"]
    assert body["durationMinutes"] == 240
    assert body["attributes"] == {
        "avatarUrl": "https://a.example/h.png",
        "displayName": "Hana Host",
    }


async def test_policy_file_refuses_a_client_attribute_key_it_does_not_allow(
    policy_app: Litestar, stage_arn: str
) -> None:
    token = mint_user_token(SHARED_SECRET.encode(), sub="v1")
    async with AsyncTestClient(app=policy_app) as client:
        response = await client.post(
            URL,
            json={"stageArn": stage_arn, "attributes": {"displayName": "Fake Name"}},
            headers=bearer(token),
        )
    assert response.status_code == 403
    assert "displayName" in response.json()["detail"]


async def test_pseudonym_mode_puts_a_keyed_pseudonym_in_the_token(
    env: dict[str, str], make_app: Callable[..., Litestar], stage_arn: str
) -> None:
    settings = load_settings(
        {
            **env,
            "TOKEN_SERVICE_USER_ID_MODE": "pseudonym",
            "TOKEN_SERVICE_USER_ID_PSEUDONYM_SECRET": PSEUDONYM_SECRET,
        }
    )
    token = mint_user_token(SHARED_SECRET.encode(), sub="alice@example.com")
    async with AsyncTestClient(app=make_app(settings=settings)) as client:
        response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(token))
    body = response.json()
    expected = pseudonymize("alice@example.com", PSEUDONYM_SECRET.encode())
    assert body["userId"] == expected
    claims_segment = body["token"].split(".")[1]
    claims = json.loads(jwt.utils.base64url_decode(claims_segment))
    assert claims["user_id"] == expected
    assert "alice" not in json.dumps(claims)
