"""The token's user_id: the app user id, or a keyed pseudonym of it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from token_service.domain import AppUser, TokenRequest
from token_service.errors import ConfigurationError
from token_service.policy import default_policy, load_policy, pseudonymize

STAGE = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
SECRET = b"s" * 32
OTHER_SECRET = b"t" * 32


def user(user_id: str) -> AppUser:
    return AppUser(user_id=user_id, roles=frozenset(), issuer=None)


def test_pseudonym_is_stable_for_the_same_user() -> None:
    assert pseudonymize("alice@example.com", SECRET) == pseudonymize("alice@example.com", SECRET)


def test_pseudonym_differs_between_users() -> None:
    assert pseudonymize("alice", SECRET) != pseudonymize("bob", SECRET)


def test_pseudonym_differs_between_secrets() -> None:
    assert pseudonymize("alice", SECRET) != pseudonymize("alice", OTHER_SECRET)


def test_pseudonym_is_43_characters_of_unpadded_base64url() -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", pseudonymize("alice", SECRET))


def test_pseudonym_is_hmac_sha256_over_a_context_label_and_the_utf8_id() -> None:
    # Pinned so an operator can recompute pseudonyms elsewhere (see docs/policy.md).
    digest = hmac.new(
        SECRET, b"ivs-token-service/user-id/v1\x00" + "zoë".encode(), hashlib.sha256
    ).digest()
    expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pseudonymize("zoë", SECRET) == expected


def test_pseudonym_mode_puts_the_pseudonym_in_the_grant() -> None:
    policy = default_policy(user_id_mode="pseudonym", pseudonym_secret=SECRET)
    grant = policy.decide(user("alice@example.com"), TokenRequest(stage_arn=STAGE))
    assert grant.token_user_id == pseudonymize("alice@example.com", SECRET)


def test_pseudonym_mode_accepts_app_user_ids_longer_than_128() -> None:
    policy = default_policy(user_id_mode="pseudonym", pseudonym_secret=SECRET)
    grant = policy.decide(user("u" * 500), TokenRequest(stage_arn=STAGE))
    assert len(grant.token_user_id) == 43


def test_pseudonym_of_an_id_with_a_lone_surrogate_is_still_stable() -> None:
    assert pseudonymize("a\ud800", SECRET) == pseudonymize("a\ud800", SECRET)


def test_pseudonym_secret_shorter_than_32_bytes_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as error:
        load_policy(None, user_id_mode="pseudonym", pseudonym_secret=b"s" * 31)
    assert error.value.problems == ("pseudonym_secret: must be at least 32 bytes, got 31",)


def test_pseudonym_mode_without_a_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="pseudonym_secret"):
        load_policy(None, user_id_mode="pseudonym")


def test_unknown_user_id_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="user_id_mode"):
        load_policy(None, user_id_mode="hashed")


def test_the_pseudonym_secret_never_appears_in_the_policy_repr() -> None:
    secret = b"do-not-print-me-" * 2
    policy = default_policy(user_id_mode="pseudonym", pseudonym_secret=secret)
    assert "do-not-print-me" not in repr(policy)
