"""The shared-secret authenticator remembers verified tokens, never past their `exp`."""

from __future__ import annotations

import time

import pytest

from token_service.auth import SharedSecretAuthenticator, mint_user_token
from token_service.auth import shared_secret as module
from token_service.errors import AuthenticationFailed

SECRET = b"0123456789abcdef0123456789abcdef"


def test_a_verified_token_is_answered_again_without_changing_the_user() -> None:
    authenticator = SharedSecretAuthenticator(SECRET)
    token = mint_user_token(SECRET, sub="u1", roles=["publisher"])
    first = authenticator.verify(token)
    assert authenticator.verify(token) == first


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    authenticator = SharedSecretAuthenticator(SECRET, leeway_seconds=0)
    token = mint_user_token(SECRET, sub="u1", ttl_seconds=1)
    authenticator.verify(token)
    time.sleep(2.1)
    with pytest.raises(AuthenticationFailed, match="expired"):
        authenticator.verify(token)


def test_a_refused_token_is_not_remembered() -> None:
    authenticator = SharedSecretAuthenticator(SECRET)
    forged = mint_user_token(b"x" * 32, sub="u1")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            authenticator.verify(forged)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "VERIFIED_CACHE_SIZE", 3)
    authenticator = SharedSecretAuthenticator(SECRET)
    for index in range(10):
        authenticator.verify(mint_user_token(SECRET, sub=f"u{index}"))
    assert len(authenticator._verified) == 3
