"""An app user is (issuer, subject), everywhere (issue 19, item 9).

With a shared secret and OIDC configured together, `alice` from the identity provider and
`alice` from a shared-secret token (no issuer) are two users: one cannot exchange the
other's participant token, and each has a rate-limit bucket of its own. Removing the issuer
from the exchange's ownership check or from the limiter's user key fails these tests.

The operator's side names the user the same way: a ban of one `alice` refuses only her,
the lookup of one `alice`'s participants lists only hers, and an operator who names no
issuer where two users can share a user id gets a 400 naming `issuer`, not a guess. Both
mapping stores (Redis and memory) are held to it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest
import pytest_asyncio
import redis.asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.support.jwks_server import JwksServer, running_jwks_server
from token_service.auth import mint_user_token
from token_service.bootstrap.app import create_app
from token_service.config import load_settings
from token_service.mapping.records import Ban
from token_service.mapping.store import RedisMappingStore

SHARED_SECRET = "identity-shared-secret-" + "i" * 32
ISSUER = "https://idp.example.com/"
AUDIENCE = "token-service"
KID = "idp-key"
SUB = "alice"
URL = "/v1/participant-tokens"
ADMIN_TOKEN = "identity-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
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
    module_env: dict[str, str],
    module_ivs: Any,
    idp: JwksServer,
    user_limit: str,
    redis_url: str | None = None,
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
            "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
        }
        | ({"TOKEN_SERVICE_REDIS_URL": redis_url} if redis_url else {})
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


@pytest_asyncio.fixture(loop_scope="module")
async def operated(
    module_env: dict[str, str], module_ivs: Any, idp: JwksServer, store_redis_url: str | None
) -> AsyncIterator[Client]:
    """The operator's side, over each mapping store (Redis, then memory)."""
    async with _service(module_env, module_ivs, idp, "1000/second", store_redis_url) as test_client:
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
async def test_a_shared_secret_token_naming_the_identity_providers_issuer_is_refused(
    client: Client, stage_arn: str, idp_key: rsa.RSAPrivateKey
) -> None:
    """The issuer is half of who a user is: the secret's holder vouches for its own users,
    not the provider's, so it cannot claim one by writing the provider's `iss`."""
    participant = await _issue(client, _from_the_idp(idp_key), stage_arn)
    posing = mint_user_token(SHARED_SECRET.encode(), sub=SUB, issuer=ISSUER, ttl_seconds=600)

    exchanged = await client.post(f"{URL}/{participant}/exchange", json={}, headers=_bearer(posing))
    issued = await client.post(URL, json={"stageArn": stage_arn}, headers=_bearer(posing))

    assert (exchanged.status_code, issued.status_code) == (401, 401)


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


async def _issue(client: Client, token: str, stage_arn: str) -> str:
    issued = await client.post(URL, json={"stageArn": stage_arn}, headers=_bearer(token))
    assert issued.status_code == 201, issued.text
    participant: str = issued.json()["participantId"]
    return participant


async def _ban(client: Client, **fields: Any) -> Any:
    return await client.post(
        "/admin/bans", json={"userId": SUB, "reason": "r"} | fields, headers=ADMIN
    )


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("banned", "spared"),
    [("idp", "secret"), ("secret", "idp")],
    ids=["idp-banned", "secret-banned"],
)
async def test_a_ban_of_one_issuers_user_does_not_refuse_the_same_subject_from_another(
    operated: Client, stage_arn: str, idp_key: rsa.RSAPrivateKey, banned: str, spared: str
) -> None:
    tokens = {"idp": _from_the_idp(idp_key), "secret": _from_the_shared_secret()}
    issuers = {"idp": ISSUER, "secret": None}

    ban = await _ban(operated, issuer=issuers[banned])

    assert ban.status_code == 201, ban.text
    assert ban.json()["ban"]["issuer"] == issuers[banned]
    refused = await operated.post(
        URL, json={"stageArn": stage_arn}, headers=_bearer(tokens[banned])
    )
    assert refused.status_code == 403
    await _issue(operated, tokens[spared], stage_arn)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_ban_disconnects_only_the_banned_issuers_participants(
    operated: Client, stage_arn: str, idp_key: rsa.RSAPrivateKey
) -> None:
    theirs = await _issue(operated, _from_the_idp(idp_key), stage_arn)
    spared = await _issue(operated, _from_the_shared_secret(), stage_arn)

    ban = await _ban(operated, issuer=ISSUER)

    status = await operated.get(f"/admin/bans/{ban.json()['ban']['id']}", headers=ADMIN)
    assert [p["participantId"] for p in status.json()["participants"]] == [theirs]
    record = (await operated.get(f"/admin/participants/{spared}", headers=ADMIN)).json()
    assert record["disconnected"] is None


@pytest.mark.asyncio(loop_scope="module")
async def test_a_ban_naming_no_issuer_is_a_400_naming_issuer_and_bans_no_one(
    operated: Client, stage_arn: str, idp_key: rsa.RSAPrivateKey
) -> None:
    ban = await _ban(operated)

    assert ban.status_code == 400
    assert [e["field"] for e in ban.json()["errors"]] == ["issuer"]
    assert ISSUER in ban.json()["errors"][0]["message"]
    assert (await operated.get("/admin/bans", headers=ADMIN)).json()["bans"] == []
    await _issue(operated, _from_the_idp(idp_key), stage_arn)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_ban_of_every_issuer_refuses_the_subject_from_both(
    operated: Client, stage_arn: str, idp_key: rsa.RSAPrivateKey
) -> None:
    ban = await _ban(operated, issuer="*")

    assert ban.json()["ban"]["issuer"] == "*"
    for token in (_from_the_idp(idp_key), _from_the_shared_secret()):
        refused = await operated.post(URL, json={"stageArn": stage_arn}, headers=_bearer(token))
        assert refused.status_code == 403


@pytest.mark.asyncio(loop_scope="module")
async def test_a_lookup_by_user_lists_only_that_issuers_participants(
    operated: Client, stage_arn: str, idp_key: rsa.RSAPrivateKey
) -> None:
    from_idp = await _issue(operated, _from_the_idp(idp_key), stage_arn)
    from_secret = await _issue(operated, _from_the_shared_secret(), stage_arn)

    async def listed(query: str) -> list[str]:
        page = await operated.get(f"/admin/users/{SUB}/participants{query}", headers=ADMIN)
        assert page.status_code == 200, page.text
        return sorted(p["participantId"] for p in page.json()["participants"])

    assert await listed(f"?issuer={ISSUER}") == [from_idp]
    assert await listed("?issuer=") == [from_secret]
    assert await listed("?issuer=*") == sorted([from_idp, from_secret])
    unnamed = await operated.get(f"/admin/users/{SUB}/participants", headers=ADMIN)
    assert unnamed.status_code == 400
    assert [e["field"] for e in unnamed.json()["errors"]] == ["issuer"]


@pytest.mark.asyncio(loop_scope="module")
async def test_an_admin_publish_grant_is_refused_only_to_the_banned_issuers_user(
    operated: Client, stage_arn: str, idp_key: rsa.RSAPrivateKey, store_redis_url: str | None
) -> None:
    theirs = await _issue(operated, _from_the_idp(idp_key), stage_arn)
    spared = await _issue(operated, _from_the_shared_secret(), stage_arn)
    # Straight into the store: the admin route would also disconnect their participant,
    # and a disconnected participant is refused before its bans are looked at. (Redis
    # through a client of this test's own: the app's belongs to the test client's loop.)
    ban = Ban(id="ban_idp", user_id=SUB, issuer=ISSUER, reason="r", created_at=0, created_by="t")
    if store_redis_url is None:
        await operated.app.state["services"].mapping.add_ban(ban)
    else:
        own = redis.asyncio.Redis.from_url(store_redis_url)
        await RedisMappingStore(own, retention_seconds=60).add_ban(ban)
        await own.aclose()

    async def grant(participant: str) -> Any:
        return await operated.post(
            f"/admin/participants/{participant}/capabilities", json={"publish": True}, headers=ADMIN
        )

    assert (await grant(spared)).status_code == 200
    refused = await grant(theirs)
    assert refused.status_code == 403
    assert "banned" in refused.json()["detail"]


@pytest.mark.asyncio(loop_scope="module")
async def test_the_audit_lines_name_the_issuer_beside_the_user(
    operated: Client,
    stage_arn: str,
    idp_key: rsa.RSAPrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    participant = await _issue(operated, _from_the_idp(idp_key), stage_arn)
    exchanged = await operated.post(
        f"{URL}/{participant}/exchange", json={}, headers=_bearer(_from_the_idp(idp_key))
    )
    assert exchanged.status_code == 200, exchanged.text
    ban = (await _ban(operated, issuer=ISSUER)).json()["ban"]
    await operated.delete(f"/admin/bans/{ban['id']}", headers=ADMIN)

    lines = {getattr(r, "event", None): r.__dict__ for r in caplog.records}
    for event in ("token_issued", "token_exchanged", "ban_created", "ban_lifted"):
        assert (lines[event]["appUserId"], lines[event]["issuer"]) == (SUB, ISSUER), event
    assert SHARED_SECRET not in json.dumps([r.__dict__ for r in caplog.records], default=str)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_token_with_an_empty_issuer_is_the_user_without_one(
    client: Client, stage_arn: str
) -> None:
    participant = await _issue(client, _from_the_shared_secret(), stage_arn)
    empty_iss = mint_user_token(SHARED_SECRET.encode(), sub=SUB, issuer="", ttl_seconds=600)

    exchanged = await client.post(
        f"{URL}/{participant}/exchange", json={}, headers=_bearer(empty_iss)
    )

    assert exchanged.status_code == 200, exchanged.text
