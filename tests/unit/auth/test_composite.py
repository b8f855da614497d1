"""`CompositeAuthenticator`: routing by the header's algorithm family."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from token_service.auth import (
    CompositeAuthenticator,
    JwksCache,
    OidcAuthenticator,
    SharedSecretAuthenticator,
    mint_user_token,
)
from token_service.errors import AuthenticationFailed

SECRET = b"0123456789abcdef0123456789abcdef"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_with_header(header: bytes, signature: str = "c2ln") -> str:
    return f"{b64url(header)}.{b64url(json.dumps(claims()).encode())}.{signature}"


def claims() -> dict[str, object]:
    return {"sub": "user-1", "exp": int(time.time()) + 600}


@pytest.fixture
async def oidc() -> AsyncIterator[OidcAuthenticator]:
    def no_provider(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(no_provider)) as http:
        jwks = JwksCache("https://idp.example.com/jwks", http)
        yield OidcAuthenticator(jwks, issuer="https://idp.example.com/", audience="api")
        await jwks.close()


async def test_hs256_token_goes_to_the_shared_secret(oidc: OidcAuthenticator) -> None:
    auth = CompositeAuthenticator(SharedSecretAuthenticator(SECRET), oidc)
    user = await auth.authenticate(mint_user_token(SECRET, sub="sam"))
    assert user.user_id == "sam"
    assert oidc.jwks.fetch_count == 0


async def test_asymmetric_token_goes_to_oidc(oidc: OidcAuthenticator) -> None:
    auth = CompositeAuthenticator(SharedSecretAuthenticator(SECRET), oidc)
    token = jwt.encode(
        claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "k"}
    )
    # ES256 is not in this OIDC verifier's list: it refuses without touching the provider.
    with pytest.raises(AuthenticationFailed, match="unsupported algorithm"):
        await auth.authenticate(token)
    assert oidc.jwks.fetch_count == 0


async def test_alg_none_is_refused(oidc: OidcAuthenticator) -> None:
    auth = CompositeAuthenticator(SharedSecretAuthenticator(SECRET), oidc)
    token = token_with_header(b'{"alg":"none"}', signature="")
    with pytest.raises(AuthenticationFailed, match="unsupported algorithm"):
        await auth.authenticate(token)


async def test_unknown_alg_is_refused(oidc: OidcAuthenticator) -> None:
    auth = CompositeAuthenticator(SharedSecretAuthenticator(SECRET), oidc)
    token = token_with_header(b'{"alg":"XS999"}')
    with pytest.raises(AuthenticationFailed, match="unsupported algorithm"):
        await auth.authenticate(token)


async def test_missing_alg_is_refused(oidc: OidcAuthenticator) -> None:
    auth = CompositeAuthenticator(SharedSecretAuthenticator(SECRET), oidc)
    token = token_with_header(b'{"typ":"JWT"}')
    with pytest.raises(AuthenticationFailed, match="unsupported algorithm"):
        await auth.authenticate(token)


async def test_hmac_token_without_shared_secret_is_refused(oidc: OidcAuthenticator) -> None:
    auth = CompositeAuthenticator(None, oidc)
    with pytest.raises(AuthenticationFailed, match="unsupported algorithm"):
        await auth.authenticate(mint_user_token(SECRET, sub="sam"))


async def test_asymmetric_token_without_oidc_is_refused() -> None:
    auth = CompositeAuthenticator(SharedSecretAuthenticator(SECRET), None)
    token = jwt.encode(claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    with pytest.raises(AuthenticationFailed, match="unsupported algorithm"):
        await auth.authenticate(token)


async def test_garbage_is_malformed_before_routing(oidc: OidcAuthenticator) -> None:
    auth = CompositeAuthenticator(SharedSecretAuthenticator(SECRET), oidc)
    with pytest.raises(AuthenticationFailed, match="malformed token"):
        await auth.authenticate("garbage")


async def test_hs256_token_naming_the_oidc_issuer_is_refused(oidc: OidcAuthenticator) -> None:
    """The provider's users are the provider's: the secret cannot vouch for one of them."""
    auth = CompositeAuthenticator(SharedSecretAuthenticator(SECRET), oidc)
    posing = mint_user_token(SECRET, sub="sam", issuer="https://idp.example.com/")
    with pytest.raises(AuthenticationFailed, match="names the OIDC issuer"):
        await auth.authenticate(posing)
    own = await auth.authenticate(mint_user_token(SECRET, sub="sam", issuer="https://app.example"))
    assert own.issuer == "https://app.example"
