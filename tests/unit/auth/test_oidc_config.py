"""Construction rules of the OIDC side: one algorithm family per issuer, no `none`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from token_service.auth import (
    CompositeAuthenticator,
    JwksCache,
    OidcAuthenticator,
    SharedSecretAuthenticator,
)
from token_service.errors import ConfigurationError

ISSUER = "https://idp.example.com/"
AUDIENCE = "ivs-token-service"


@pytest.fixture
async def jwks() -> AsyncIterator[JwksCache]:
    async with httpx.AsyncClient() as http:
        # Never started: construction rules need no provider.
        yield JwksCache("https://idp.example.com/.well-known/jwks.json", http)


def test_default_algorithms_are_rs256(jwks: JwksCache) -> None:
    assert OidcAuthenticator(jwks, issuer=ISSUER, audience=AUDIENCE).algorithms == ("RS256",)


def test_several_asymmetric_algorithms_are_allowed(jwks: JwksCache) -> None:
    auth = OidcAuthenticator(jwks, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256", "ES256"])
    assert auth.algorithms == ("RS256", "ES256")


def test_hmac_mixed_with_asymmetric_is_refused(jwks: JwksCache) -> None:
    with pytest.raises(ConfigurationError, match="HMAC"):
        OidcAuthenticator(jwks, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256", "HS256"])


def test_hmac_alone_is_refused_for_oidc(jwks: JwksCache) -> None:
    with pytest.raises(ConfigurationError, match="HMAC"):
        OidcAuthenticator(jwks, issuer=ISSUER, audience=AUDIENCE, algorithms=["HS256"])


@pytest.mark.parametrize("none", ["none", "None", "NONE"])
def test_none_algorithm_is_refused(jwks: JwksCache, none: str) -> None:
    with pytest.raises(ConfigurationError, match="'none'"):
        OidcAuthenticator(jwks, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256", none])


def test_empty_algorithm_list_is_refused(jwks: JwksCache) -> None:
    with pytest.raises(ConfigurationError, match="empty"):
        OidcAuthenticator(jwks, issuer=ISSUER, audience=AUDIENCE, algorithms=[])


def test_algorithms_as_a_bare_string_are_refused(jwks: JwksCache) -> None:
    with pytest.raises(ConfigurationError, match="not a string"):
        OidcAuthenticator(jwks, issuer=ISSUER, audience=AUDIENCE, algorithms="RS256")


def test_unknown_algorithm_is_refused(jwks: JwksCache) -> None:
    with pytest.raises(ConfigurationError, match="RS1"):
        OidcAuthenticator(jwks, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS1"])


def test_issuer_and_audience_are_required(jwks: JwksCache) -> None:
    with pytest.raises(ConfigurationError) as caught:
        OidcAuthenticator(jwks, issuer="", audience="")
    assert len(caught.value.problems) == 2


def test_composite_needs_at_least_one_verifier() -> None:
    with pytest.raises(ConfigurationError, match="no app-user authentication"):
        CompositeAuthenticator(None, None)


def test_composite_accepts_either_verifier_alone(jwks: JwksCache) -> None:
    CompositeAuthenticator(SharedSecretAuthenticator(b"s" * 32), None)
    CompositeAuthenticator(None, OidcAuthenticator(jwks, issuer=ISSUER, audience=AUDIENCE))


async def test_jwks_cache_refuses_a_non_http_url() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigurationError, match="http"):
            JwksCache("file:///etc/passwd", http)


async def test_jwks_cache_refuses_non_positive_intervals() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigurationError) as caught:
            JwksCache("https://idp.example.com/jwks", http, refresh_interval=0, retry_initial=-1)
    assert len(caught.value.problems) == 2


def test_unstarted_cache_is_not_ready(jwks: JwksCache) -> None:
    assert not jwks.ready
    assert jwks.last_success is None
