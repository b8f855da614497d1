"""Where user ids and roles come from: configurable claims, IdP-specific shapes."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from token_service.auth import SharedSecretAuthenticator
from token_service.errors import AuthenticationFailed

SECRET = b"0123456789abcdef0123456789abcdef"


def token(**extra: Any) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "user-1", "exp": now + 600, **extra}, SECRET, algorithm="HS256")


async def roles_of(roles_claim: str, **extra: Any) -> frozenset[str]:
    auth = SharedSecretAuthenticator(SECRET, roles_claim=roles_claim)
    return (await auth.authenticate(token(**extra))).roles


async def test_keycloak_realm_roles_by_dotted_path() -> None:
    roles = await roles_of("realm_access.roles", realm_access={"roles": ["publisher", "admin"]})
    assert roles == frozenset({"publisher", "admin"})


async def test_cognito_groups_claim_with_a_colon() -> None:
    assert await roles_of("cognito:groups", **{"cognito:groups": ["publisher"]}) == frozenset(
        {"publisher"}
    )


async def test_okta_style_space_separated_scope_string() -> None:
    assert await roles_of("scp", scp="stream:read stream:publish") == frozenset(
        {"stream:read", "stream:publish"}
    )


async def test_literal_claim_with_dots_wins_over_the_path() -> None:
    extra = {"https://example.com/roles": ["literal"], "https://example": {"com/roles": ["path"]}}
    assert await roles_of("https://example.com/roles", **extra) == frozenset({"literal"})


async def test_literal_dotted_claim_wins_over_nested_value() -> None:
    extra = {"a.b": ["literal"], "a": {"b": ["nested"]}}
    assert await roles_of("a.b", **extra) == frozenset({"literal"})


async def test_dotted_path_that_does_not_resolve_means_no_roles() -> None:
    assert await roles_of("realm_access.roles", realm_access="not an object") == frozenset()


async def test_null_roles_claim_means_no_roles() -> None:
    assert await roles_of("roles", roles=None) == frozenset()


async def test_empty_role_names_are_dropped() -> None:
    assert await roles_of("roles", roles=["publisher", ""]) == frozenset({"publisher"})


@pytest.mark.parametrize("bad", [42, {"publisher": True}, ["publisher", 7], True])
async def test_roles_of_another_shape_are_rejected(bad: Any) -> None:
    with pytest.raises(AuthenticationFailed, match="malformed roles claim"):
        await roles_of("roles", roles=bad)


async def test_user_id_by_dotted_path() -> None:
    auth = SharedSecretAuthenticator(SECRET, user_id_claim="profile.id")
    user = await auth.authenticate(token(profile={"id": "p-42"}))
    assert user.user_id == "p-42"


async def test_user_id_of_exactly_256_characters_is_accepted() -> None:
    auth = SharedSecretAuthenticator(SECRET)
    user = await auth.authenticate(token(sub="u" * 256))
    assert len(user.user_id) == 256


async def test_every_verified_claim_is_kept_on_the_user() -> None:
    auth = SharedSecretAuthenticator(SECRET)
    user = await auth.authenticate(token(email="sam@example.com"))
    assert user.claims["email"] == "sam@example.com"
