"""`parse_bearer`: getting the token out of an Authorization header value."""

from __future__ import annotations

import pytest

from token_service.auth import MAX_TOKEN_CHARS, parse_bearer
from token_service.errors import AuthenticationFailed

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"


def detail_of(header: str | None) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        parse_bearer(header)
    return caught.value.detail


def test_bearer_token_is_extracted() -> None:
    assert parse_bearer(f"Bearer {TOKEN}") == TOKEN


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(scheme: str) -> None:
    assert parse_bearer(f"{scheme} {TOKEN}") == TOKEN


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_bearer(f"  Bearer   {TOKEN}  ") == TOKEN


@pytest.mark.parametrize("header", [None, "", "   "])
def test_absent_header_is_missing_bearer_token(header: str | None) -> None:
    assert detail_of(header) == "missing bearer token"


def test_scheme_without_token_is_missing_bearer_token() -> None:
    assert detail_of("Bearer") == "missing bearer token"
    assert detail_of("Bearer   ") == "missing bearer token"


def test_other_scheme_is_refused() -> None:
    assert detail_of("Basic dXNlcjpwYXNz") == "unsupported authorization scheme (expected Bearer)"


def test_token_with_inner_whitespace_is_malformed() -> None:
    assert detail_of(f"Bearer {TOKEN} extra") == "malformed authorization header"


def test_token_with_characters_outside_b64token_is_malformed() -> None:
    assert detail_of("Bearer abc<def>") == "malformed authorization header"


def test_oversize_token_is_refused_before_decoding() -> None:
    assert detail_of("Bearer " + "a" * (MAX_TOKEN_CHARS + 1)) == "token too large"


def test_huge_header_is_refused() -> None:
    assert detail_of("Bearer " + "a" * 1_000_000) == "token too large"


def test_token_of_exactly_the_cap_is_accepted() -> None:
    token = "a" * MAX_TOKEN_CHARS
    assert parse_bearer(f"Bearer {token}") == token


def test_detail_never_contains_the_token() -> None:
    secret_looking = "s3cr3t-token-value"
    assert secret_looking not in detail_of(f"Basic {secret_looking}")
    assert secret_looking not in detail_of(f"Bearer {secret_looking} x")
