"""OIDC app-user tokens verified against a real JWKS server over HTTP.

Keys are generated once per test session; each test gets its own provider (a
`JwksServer` on a free loopback port) whose key set it changes or breaks at will.
Nothing here asserts on timing: background behaviour is awaited by polling state
with a generous deadline, and the unknown-kid cooldown is driven by a fake clock.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.support.jwks_server import JwksServer, running_jwks_server
from token_service.auth import (
    CompositeAuthenticator,
    JwksCache,
    OidcAuthenticator,
    SharedSecretAuthenticator,
)
from token_service.errors import AuthenticationFailed, ServiceUnavailable

ISSUER = "https://idp.example.com/realms/demo"
AUDIENCE = "ivs-token-service"
SHARED_SECRET = b"0123456789abcdef0123456789abcdef"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
MakeCache = Callable[..., Awaitable[JwksCache]]


# -- keys (once per session) ------------------------------------------------------------


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rotated_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: PrivateKey, kid: str | None, **members: Any) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    jwk.update(members)
    return jwk


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "oidc-user-1",
        "iat": now,
        "exp": now + 600,
        "realm_access": {"roles": ["publisher"]},
    }
    base.update(overrides)
    return base


def sign(key: PrivateKey, kid: str | None, alg: str = "RS256", **overrides: Any) -> str:
    headers: dict[str, Any] = {}
    if kid is not None:
        headers["kid"] = kid
    extra_headers = overrides.pop("headers", {})
    headers.update(extra_headers)
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers=headers)


# -- the provider and the cache ---------------------------------------------------------


@pytest.fixture
def provider(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> Iterator[JwksServer]:
    keys = [public_jwk(rsa_key, "rsa-1", alg="RS256", use="sig"), public_jwk(ec_key, "ec-1")]
    with running_jwks_server(keys) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
async def make_cache(provider: JwksServer, http: httpx.AsyncClient) -> AsyncIterator[MakeCache]:
    caches: list[JwksCache] = []

    async def make(**options: Any) -> JwksCache:
        cache = JwksCache(provider.url, http, **options)
        caches.append(cache)
        await cache.start()
        return cache

    yield make
    for cache in caches:
        await cache.close()


@pytest.fixture
async def cache(make_cache: MakeCache) -> JwksCache:
    return await make_cache()


def oidc(cache: JwksCache, **options: Any) -> OidcAuthenticator:
    options.setdefault("algorithms", ("RS256", "ES256"))
    options.setdefault("roles_claim", "realm_access.roles")
    return OidcAuthenticator(cache, issuer=ISSUER, audience=AUDIENCE, **options)


async def rejected(auth: OidcAuthenticator | CompositeAuthenticator, token: str) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        await auth.authenticate(token)
    return caught.value.detail


async def eventually(condition: Callable[[], bool], deadline: float = 10) -> None:
    """Wait for background work; the deadline only bounds a broken test."""
    stop = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > stop:
            pytest.fail("condition not reached before the deadline")
        await asyncio.sleep(0.01)


# -- accepted ---------------------------------------------------------------------------


async def test_valid_rs256_token_is_accepted(cache: JwksCache, rsa_key: rsa.RSAPrivateKey) -> None:
    user = await oidc(cache).authenticate(sign(rsa_key, "rsa-1"))
    assert user.user_id == "oidc-user-1"
    assert user.roles == frozenset({"publisher"})
    assert user.issuer == ISSUER


async def test_valid_es256_token_is_accepted(
    cache: JwksCache, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    user = await oidc(cache).authenticate(sign(ec_key, "ec-1", alg="ES256"))
    assert user.user_id == "oidc-user-1"


async def test_started_cache_is_ready_after_one_fetch(
    cache: JwksCache, provider: JwksServer
) -> None:
    assert cache.ready
    assert cache.last_success is not None
    assert cache.last_error is None
    assert sorted(kid or "" for kid in cache.key_ids) == ["ec-1", "rsa-1"]
    assert provider.requests == 1


async def test_known_keys_need_no_further_fetch(
    cache: JwksCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    auth = oidc(cache)
    for _ in range(20):
        await auth.authenticate(sign(rsa_key, "rsa-1"))
    assert provider.requests == 1


async def test_token_without_kid_uses_the_only_published_key(
    make_cache: MakeCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    provider.set_keys([public_jwk(rsa_key, None, alg="RS256")])
    cache = await make_cache()
    assert (await oidc(cache).authenticate(sign(rsa_key, None))).user_id == "oidc-user-1"


async def test_token_without_kid_is_refused_when_several_keys_are_published(
    cache: JwksCache, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert await rejected(oidc(cache), sign(rsa_key, None)) == "unknown signing key"


# -- rotation at the provider -----------------------------------------------------------


async def test_new_kid_at_provider_is_accepted_after_one_refetch(
    cache: JwksCache,
    provider: JwksServer,
    rsa_key: rsa.RSAPrivateKey,
    rotated_rsa_key: rsa.RSAPrivateKey,
) -> None:
    provider.set_keys(
        [public_jwk(rsa_key, "rsa-1", alg="RS256"), public_jwk(rotated_rsa_key, "rsa-2")]
    )
    auth = oidc(cache)
    assert (await auth.authenticate(sign(rotated_rsa_key, "rsa-2"))).user_id == "oidc-user-1"
    assert provider.requests == 2
    await auth.authenticate(sign(rotated_rsa_key, "rsa-2"))
    await auth.authenticate(sign(rsa_key, "rsa-1"))
    assert provider.requests == 2


async def test_background_refresh_drops_a_retired_key(
    make_cache: MakeCache,
    provider: JwksServer,
    rsa_key: rsa.RSAPrivateKey,
    rotated_rsa_key: rsa.RSAPrivateKey,
) -> None:
    cache = await make_cache(refresh_interval=0.05)
    provider.set_keys([public_jwk(rotated_rsa_key, "rsa-2", alg="RS256")])
    await eventually(lambda: cache.key_ids == ("rsa-2",))
    auth = oidc(cache, algorithms=("RS256",))
    assert await rejected(auth, sign(rsa_key, "rsa-1")) == "unknown signing key"
    assert (await auth.authenticate(sign(rotated_rsa_key, "rsa-2"))).user_id == "oidc-user-1"


# -- the unknown-kid cooldown -----------------------------------------------------------


async def test_unknown_kid_flood_triggers_at_most_one_fetch(
    cache: JwksCache, provider: JwksServer, attacker_key: rsa.RSAPrivateKey
) -> None:
    auth = oidc(cache)
    tokens = [sign(attacker_key, uuid.uuid4().hex) for _ in range(100)]
    concurrent = await asyncio.gather(
        *(auth.authenticate(token) for token in tokens[:50]), return_exceptions=True
    )
    sequential = [await rejected(auth, token) for token in tokens[50:]]
    assert all(
        isinstance(outcome, AuthenticationFailed) and outcome.detail == "unknown signing key"
        for outcome in concurrent
    )
    assert set(sequential) == {"unknown signing key"}
    assert provider.requests == 2  # the start-up fetch, and one for the whole flood
    assert cache.fetch_count == 2


async def test_unknown_kid_fetches_again_once_the_cooldown_has_passed(
    make_cache: MakeCache, provider: JwksServer, attacker_key: rsa.RSAPrivateKey
) -> None:
    now = [1000.0]
    cache = await make_cache(unknown_kid_cooldown=30, clock=lambda: now[0])
    auth = oidc(cache)
    await rejected(auth, sign(attacker_key, "random-1"))
    await rejected(auth, sign(attacker_key, "random-2"))
    assert provider.requests == 2
    now[0] += 29
    await rejected(auth, sign(attacker_key, "random-3"))
    assert provider.requests == 2
    now[0] += 1
    await rejected(auth, sign(attacker_key, "random-4"))
    assert provider.requests == 3


async def test_concurrent_requests_for_a_new_kid_share_one_slow_fetch(
    cache: JwksCache, provider: JwksServer, rotated_rsa_key: rsa.RSAPrivateKey
) -> None:
    provider.set_keys([public_jwk(rotated_rsa_key, "rsa-2", alg="RS256")])
    provider.hold()
    auth = oidc(cache)
    waiting = [
        asyncio.create_task(auth.authenticate(sign(rotated_rsa_key, "rsa-2"))) for _ in range(20)
    ]
    await eventually(lambda: provider.requests == 2)
    provider.release()
    users = await asyncio.gather(*waiting)
    assert {user.user_id for user in users} == {"oidc-user-1"}
    assert provider.requests == 2


async def test_new_kid_while_the_provider_is_slow_is_refused_after_the_miss_wait(
    make_cache: MakeCache, provider: JwksServer, rotated_rsa_key: rsa.RSAPrivateKey
) -> None:
    cache = await make_cache(miss_wait=0.2)
    loaded_first = cache.last_success
    provider.set_keys([public_jwk(rotated_rsa_key, "rsa-2", alg="RS256")])
    provider.hold()
    started = time.monotonic()
    refusal = await rejected(oidc(cache), sign(rotated_rsa_key, "rsa-2"))
    # Not the fetch timeout (10 s): the request stops waiting, the fetch goes on.
    assert time.monotonic() - started < 5
    assert refusal == "unknown signing key"
    provider.release()
    await eventually(lambda: cache.last_success != loaded_first)
    assert provider.requests == 2
    assert (await oidc(cache).authenticate(sign(rotated_rsa_key, "rsa-2"))).user_id == "oidc-user-1"


async def test_cancelled_request_does_not_cancel_the_shared_fetch(
    cache: JwksCache, provider: JwksServer, rotated_rsa_key: rsa.RSAPrivateKey
) -> None:
    provider.set_keys([public_jwk(rotated_rsa_key, "rsa-2", alg="RS256")])
    provider.hold()
    auth = oidc(cache)
    impatient = asyncio.create_task(auth.authenticate(sign(rotated_rsa_key, "rsa-2")))
    await eventually(lambda: provider.requests == 2)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    provider.release()
    await eventually(lambda: cache.key_ids == ("rsa-2",))
    assert cache.fetch_count == 2


async def test_known_kid_with_the_wrong_key_is_an_invalid_signature(
    cache: JwksCache, provider: JwksServer, attacker_key: rsa.RSAPrivateKey
) -> None:
    assert await rejected(oidc(cache), sign(attacker_key, "rsa-1")) == "invalid signature"
    assert provider.requests == 1


# -- the provider failing ---------------------------------------------------------------


async def test_provider_down_keeps_the_last_good_keys(
    cache: JwksCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    provider.go_down()
    assert not await cache.refresh()
    assert cache.ready
    assert cache.last_error is not None
    assert cache.last_error.startswith("unreachable")
    assert (await oidc(cache).authenticate(sign(rsa_key, "rsa-1"))).user_id == "oidc-user-1"


async def test_provider_error_status_keeps_the_last_good_keys(
    cache: JwksCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    provider.fail_with(500)
    assert not await cache.refresh()
    assert cache.last_error == "HTTP 500"
    assert (await oidc(cache).authenticate(sign(rsa_key, "rsa-1"))).user_id == "oidc-user-1"


async def test_provider_garbage_keeps_the_last_good_keys(
    cache: JwksCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    provider.serve_garbage()
    assert not await cache.refresh()
    assert cache.last_error == "not JSON"
    assert (await oidc(cache).authenticate(sign(rsa_key, "rsa-1"))).user_id == "oidc-user-1"


async def test_provider_empty_key_set_keeps_the_last_good_keys(
    cache: JwksCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    provider.set_keys([])
    assert not await cache.refresh()
    assert cache.last_error == "no usable signature keys"
    assert (await oidc(cache).authenticate(sign(rsa_key, "rsa-1"))).user_id == "oidc-user-1"


async def test_oversize_key_set_keeps_the_last_good_keys(
    make_cache: MakeCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    cache = await make_cache(max_bytes=4096)
    provider.set_raw(b'{"keys": [' + b" " * 10_000 + b"]}")
    assert not await cache.refresh()
    assert cache.last_error == "larger than 4096 bytes"
    assert (await oidc(cache).authenticate(sign(rsa_key, "rsa-1"))).user_id == "oidc-user-1"


async def test_unknown_kid_while_provider_is_down_is_an_unknown_key(
    cache: JwksCache, provider: JwksServer, attacker_key: rsa.RSAPrivateKey
) -> None:
    provider.go_down()
    assert await rejected(oidc(cache), sign(attacker_key, "new-kid")) == "unknown signing key"


async def test_provider_down_at_start_is_not_ready_and_recovers(
    rsa_key: rsa.RSAPrivateKey, http: httpx.AsyncClient
) -> None:
    provider = JwksServer([public_jwk(rsa_key, "rsa-1", alg="RS256")])  # not listening yet
    cache = JwksCache(provider.url, http, retry_initial=0.01, retry_max=0.05)
    try:
        await cache.start()  # must not raise
        assert not cache.ready
        assert cache.last_success is None
        with pytest.raises(ServiceUnavailable):
            await oidc(cache).authenticate(sign(rsa_key, "rsa-1"))
        provider.start()
        await eventually(lambda: cache.ready)
        assert (await oidc(cache).authenticate(sign(rsa_key, "rsa-1"))).user_id == "oidc-user-1"
    finally:
        await cache.close()
        provider.stop()


# -- keys the cache must never use ------------------------------------------------------


async def test_jku_header_is_rejected_and_never_fetched(
    cache: JwksCache, provider: JwksServer, attacker_key: rsa.RSAPrivateKey
) -> None:
    with running_jwks_server([public_jwk(attacker_key, "evil", alg="RS256")]) as attacker:
        token = sign(attacker_key, "evil", headers={"jku": attacker.url})
        detail = await rejected(oidc(cache), token)
        assert "jku" in detail
        assert attacker.requests == 0
    assert provider.requests == 1


async def test_jku_header_is_rejected_even_with_a_valid_signature(
    cache: JwksCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = sign(rsa_key, "rsa-1", headers={"jku": provider.url})
    assert "jku" in await rejected(oidc(cache), token)


async def test_embedded_jwk_header_is_rejected(
    cache: JwksCache, attacker_key: rsa.RSAPrivateKey
) -> None:
    token = sign(attacker_key, "evil", headers={"jwk": public_jwk(attacker_key, "evil")})
    assert "jwk" in await rejected(oidc(cache), token)


async def test_x5u_header_is_rejected(cache: JwksCache, attacker_key: rsa.RSAPrivateKey) -> None:
    token = sign(attacker_key, "evil", headers={"x5u": "https://evil.example.com/cert.pem"})
    assert "x5u" in await rejected(oidc(cache), token)


def forge_hs256_with_public_pem(rsa_key: rsa.RSAPrivateKey, kid: str) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the public key's PEM."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64url(json.dumps(claims(sub="forged")).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


async def test_hs256_signed_with_the_rsa_public_pem_is_rejected_by_oidc(
    cache: JwksCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    forged = forge_hs256_with_public_pem(rsa_key, "rsa-1")
    assert await rejected(oidc(cache), forged) == "unsupported algorithm"
    assert provider.requests == 1


async def test_hs256_signed_with_the_rsa_public_pem_is_rejected_by_composite(
    cache: JwksCache, rsa_key: rsa.RSAPrivateKey
) -> None:
    auth = CompositeAuthenticator(SharedSecretAuthenticator(SHARED_SECRET), oidc(cache))
    forged = forge_hs256_with_public_pem(rsa_key, "rsa-1")
    assert await rejected(auth, forged) == "invalid signature"


async def test_symmetric_key_in_the_key_set_is_never_used(
    make_cache: MakeCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    oct_key = {"kty": "oct", "kid": "hmac", "k": b64url(SHARED_SECRET), "alg": "HS256"}
    provider.set_keys([public_jwk(rsa_key, "rsa-1", alg="RS256"), oct_key])
    cache = await make_cache()
    assert cache.key_ids == ("rsa-1",)


async def test_key_declared_for_encryption_is_not_used(
    make_cache: MakeCache,
    provider: JwksServer,
    rsa_key: rsa.RSAPrivateKey,
    rotated_rsa_key: rsa.RSAPrivateKey,
) -> None:
    provider.set_keys(
        [public_jwk(rsa_key, "rsa-1", alg="RS256"), public_jwk(rotated_rsa_key, "enc-1", use="enc")]
    )
    cache = await make_cache()
    assert cache.key_ids == ("rsa-1",)
    assert await rejected(oidc(cache), sign(rotated_rsa_key, "enc-1")) == "unknown signing key"


async def test_key_whose_operations_exclude_verify_is_not_used(
    make_cache: MakeCache,
    provider: JwksServer,
    rsa_key: rsa.RSAPrivateKey,
    rotated_rsa_key: rsa.RSAPrivateKey,
) -> None:
    provider.set_keys(
        [
            public_jwk(rsa_key, "rsa-1", alg="RS256"),
            public_jwk(rotated_rsa_key, "wrap-1", key_ops=["wrapKey"]),
        ]
    )
    cache = await make_cache()
    assert cache.key_ids == ("rsa-1",)


async def test_weak_rsa_key_is_not_used(
    make_cache: MakeCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - weak on purpose: the cache must refuse it
    provider.set_keys([public_jwk(rsa_key, "rsa-1", alg="RS256"), public_jwk(weak, "weak")])
    cache = await make_cache()
    assert cache.key_ids == ("rsa-1",)


async def test_token_alg_must_equal_the_keys_declared_alg(
    cache: JwksCache, provider: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = sign(rsa_key, "rsa-1", alg="PS256")  # a valid PS256 signature by the same key
    auth = oidc(cache, algorithms=("RS256", "PS256"))
    assert await rejected(auth, token) == "algorithm does not match the signing key"
    assert provider.requests == 1


async def test_token_alg_must_suit_the_key_type(
    cache: JwksCache, rsa_key: rsa.RSAPrivateKey
) -> None:
    # `ec-1` declares no alg; RS256 can still never verify with an EC key.
    token = sign(rsa_key, "ec-1", alg="RS256")
    assert await rejected(oidc(cache), token) == "algorithm does not match the signing key"


async def test_algorithm_outside_the_configured_list_is_rejected_without_a_fetch(
    cache: JwksCache, provider: JwksServer, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    token = sign(ec_key, "ec-1", alg="ES256")
    assert await rejected(oidc(cache, algorithms=("RS256",)), token) == "unsupported algorithm"
    assert provider.requests == 1


# -- claims -----------------------------------------------------------------------------


async def test_wrong_issuer_is_rejected(cache: JwksCache, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "rsa-1", iss="https://idp.example.com/realms/other")
    assert await rejected(oidc(cache), token) == "wrong issuer"


async def test_wrong_audience_is_rejected(cache: JwksCache, rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(rsa_key, "rsa-1", aud="another-client")
    assert await rejected(oidc(cache), token) == "wrong audience"


async def test_expired_token_is_rejected(cache: JwksCache, rsa_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    token = sign(rsa_key, "rsa-1", iat=now - 7200, exp=now - 3600)
    assert await rejected(oidc(cache), token) == "token expired"


async def test_token_without_exp_is_rejected(cache: JwksCache, rsa_key: rsa.RSAPrivateKey) -> None:
    payload = claims()
    del payload["exp"]
    token = jwt.encode(payload, rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    assert await rejected(oidc(cache), token) == "missing exp claim"
