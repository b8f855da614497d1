"""`AdminTokens`: the /admin bearer tokens, compared in constant time."""

from __future__ import annotations

import hmac

import pytest

from token_service.auth import AdminTokens
from token_service.errors import ConfigurationError

FIRST = "admin-token-0123456789abcdef"
SECOND = "second-admin-token-ABCDEFGHIJ"


def test_configured_token_verifies() -> None:
    assert AdminTokens([FIRST]).verify(FIRST)


def test_any_of_several_tokens_verifies() -> None:
    tokens = AdminTokens([FIRST, SECOND])
    assert tokens.verify(FIRST)
    assert tokens.verify(SECOND)


def test_unknown_token_does_not_verify() -> None:
    assert not AdminTokens([FIRST]).verify("not-the-admin-token-at-all")


def test_prefix_of_a_token_does_not_verify() -> None:
    assert not AdminTokens([FIRST]).verify(FIRST[:-1])


def test_empty_presented_token_does_not_verify() -> None:
    assert not AdminTokens([FIRST]).verify("")


def test_non_ascii_presented_token_does_not_raise() -> None:
    assert not AdminTokens([FIRST]).verify("ädmin-tökén-0123456789")


def test_no_configured_tokens_verifies_nothing() -> None:
    assert not AdminTokens([]).verify(FIRST)


def test_short_token_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="shorter than 16"):
        AdminTokens(["short-token"])


def test_empty_token_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        AdminTokens([""])


def test_token_with_whitespace_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cannot carry"):
        AdminTokens(["admin token with spaces"])


def test_a_bare_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a string"):
        AdminTokens(FIRST)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AdminTokens(["short", FIRST, "also short"])
    assert len(caught.value.problems) == 2


def test_every_configured_token_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: a match on the first token still compares the rest."""
    calls = 0
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        nonlocal calls
        calls += 1
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    assert AdminTokens([FIRST, SECOND, FIRST + "x"]).verify(FIRST)
    assert calls == 3


def test_repr_does_not_reveal_tokens() -> None:
    assert FIRST not in repr(AdminTokens([FIRST]))
