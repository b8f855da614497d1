"""`SharedSecretAuthenticator` and `mint_user_token`: HS256 app-user JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from token_service.auth import MAX_TOKEN_CHARS, SharedSecretAuthenticator, mint_user_token
from token_service.errors import AuthenticationFailed, ConfigurationError

SECRET = b"0123456789abcdef0123456789abcdef"  # exactly 32 bytes
OTHER_SECRET = b"fedcba9876543210fedcba9876543210"
ISSUER = "https://app.example.com"
AUDIENCE = "ivs-token-service"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims: dict[str, Any], secret: bytes = SECRET, **headers: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers or None)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"sub": "user-1", "iat": now, "exp": now + 600}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


async def rejected(auth: SharedSecretAuthenticator, token: str) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        await auth.authenticate(token)
    return caught.value.detail


@pytest.fixture
def auth() -> SharedSecretAuthenticator:
    return SharedSecretAuthenticator(SECRET)


@pytest.fixture
def strict_auth() -> SharedSecretAuthenticator:
    return SharedSecretAuthenticator(SECRET, issuer=ISSUER, audience=AUDIENCE)


# -- accepted ---------------------------------------------------------------------------


async def test_valid_token_gives_app_user_with_list_roles(auth: SharedSecretAuthenticator) -> None:
    user = await auth.authenticate(hs256(claims(roles=["publisher", "viewer"])))
    assert user.user_id == "user-1"
    assert user.roles == frozenset({"publisher", "viewer"})
    assert user.issuer is None
    assert user.claims["sub"] == "user-1"


async def test_space_separated_roles_are_split(auth: SharedSecretAuthenticator) -> None:
    user = await auth.authenticate(hs256(claims(roles="publisher  viewer")))
    assert user.roles == frozenset({"publisher", "viewer"})


async def test_token_without_roles_has_no_roles(auth: SharedSecretAuthenticator) -> None:
    assert (await auth.authenticate(hs256(claims()))).roles == frozenset()


async def test_matching_issuer_and_audience_are_accepted(
    strict_auth: SharedSecretAuthenticator,
) -> None:
    user = await strict_auth.authenticate(hs256(claims(iss=ISSUER, aud=AUDIENCE)))
    assert user.issuer == ISSUER


async def test_audience_list_containing_ours_with_us_as_azp_is_accepted(
    strict_auth: SharedSecretAuthenticator,
) -> None:
    token = hs256(claims(iss=ISSUER, aud=["other-api", AUDIENCE], azp=AUDIENCE))
    assert (await strict_auth.authenticate(token)).user_id == "user-1"


async def test_minted_token_is_accepted(strict_auth: SharedSecretAuthenticator) -> None:
    token = mint_user_token(
        SECRET, sub="sam", roles=["publisher"], issuer=ISSUER, audience=AUDIENCE
    )
    user = await strict_auth.authenticate(token)
    assert (user.user_id, user.roles) == ("sam", frozenset({"publisher"}))


def test_minted_token_has_the_requested_lifetime() -> None:
    token = mint_user_token(SECRET, sub="sam", ttl_seconds=120, now=1_800_000_000)
    payload = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert (payload["iat"], payload["exp"]) == (1_800_000_000, 1_800_000_120)
    assert "roles" not in payload


def test_minted_tokens_differ() -> None:
    assert mint_user_token(SECRET, sub="sam", now=1) != mint_user_token(SECRET, sub="sam", now=1)


async def test_configured_user_id_claim_is_used() -> None:
    auth = SharedSecretAuthenticator(SECRET, user_id_claim="email")
    user = await auth.authenticate(hs256(claims(email="sam@example.com")))
    assert user.user_id == "sam@example.com"


# -- leeway -----------------------------------------------------------------------------


async def test_expiry_within_leeway_is_accepted(auth: SharedSecretAuthenticator) -> None:
    now = int(time.time())
    token = hs256(claims(iat=now - 600, exp=now - 10))
    assert (await auth.authenticate(token)).user_id == "user-1"


async def test_expiry_beyond_leeway_is_rejected(auth: SharedSecretAuthenticator) -> None:
    now = int(time.time())
    assert await rejected(auth, hs256(claims(iat=now - 600, exp=now - 60))) == "token expired"


async def test_zero_leeway_rejects_a_just_expired_token() -> None:
    auth = SharedSecretAuthenticator(SECRET, leeway_seconds=0)
    now = int(time.time())
    assert await rejected(auth, hs256(claims(iat=now - 600, exp=now - 10))) == "token expired"


async def test_not_before_in_the_future_is_rejected(auth: SharedSecretAuthenticator) -> None:
    now = int(time.time())
    assert await rejected(auth, hs256(claims(nbf=now + 600))) == "token not yet valid"


# -- rejected ---------------------------------------------------------------------------


async def test_empty_token_is_missing(auth: SharedSecretAuthenticator) -> None:
    assert await rejected(auth, "") == "missing bearer token"


async def test_expired_token_is_rejected(auth: SharedSecretAuthenticator) -> None:
    now = int(time.time())
    token = hs256(claims(iat=now - 7200, exp=now - 3600))
    assert await rejected(auth, token) == "token expired"


async def test_wrongly_signed_token_is_rejected(auth: SharedSecretAuthenticator) -> None:
    assert await rejected(auth, hs256(claims(), OTHER_SECRET)) == "invalid signature"


async def test_alg_none_token_is_rejected(auth: SharedSecretAuthenticator) -> None:
    header = b64url(b'{"alg":"none","typ":"JWT"}')
    token = f"{header}.{b64url(json.dumps(claims()).encode())}."
    assert await rejected(auth, token) == "unsupported algorithm"


async def test_alg_none_token_with_a_signature_is_rejected(
    auth: SharedSecretAuthenticator,
) -> None:
    valid = hs256(claims())
    _, payload, signature = valid.split(".")
    header = b64url(b'{"alg":"none"}')
    token = f"{header}.{payload}.{signature}"
    assert await rejected(auth, token) == "unsupported algorithm"


async def test_asymmetric_token_is_rejected(auth: SharedSecretAuthenticator) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(), key, algorithm="ES256")
    assert await rejected(auth, token) == "unsupported algorithm"


async def test_hs512_token_is_rejected(auth: SharedSecretAuthenticator) -> None:
    token = jwt.encode(claims(), SECRET * 2, algorithm="HS512")
    assert await rejected(auth, token) == "unsupported algorithm"


async def test_wrong_issuer_is_rejected(strict_auth: SharedSecretAuthenticator) -> None:
    token = hs256(claims(iss="https://evil.example.com", aud=AUDIENCE))
    assert await rejected(strict_auth, token) == "wrong issuer"


async def test_issuer_prefix_is_a_wrong_issuer(strict_auth: SharedSecretAuthenticator) -> None:
    token = hs256(claims(iss=ISSUER + ".evil.com", aud=AUDIENCE))
    assert await rejected(strict_auth, token) == "wrong issuer"


async def test_missing_issuer_is_rejected(strict_auth: SharedSecretAuthenticator) -> None:
    assert await rejected(strict_auth, hs256(claims(aud=AUDIENCE))) == "missing iss claim"


async def test_wrong_audience_is_rejected(strict_auth: SharedSecretAuthenticator) -> None:
    token = hs256(claims(iss=ISSUER, aud="some-other-api"))
    assert await rejected(strict_auth, token) == "wrong audience"


async def test_missing_audience_is_rejected(strict_auth: SharedSecretAuthenticator) -> None:
    assert await rejected(strict_auth, hs256(claims(iss=ISSUER))) == "missing aud claim"


async def test_audience_present_but_not_configured_is_rejected(
    auth: SharedSecretAuthenticator,
) -> None:
    """RFC 7519 4.1.3: a recipient not named in `aud` must reject the token."""
    assert await rejected(auth, hs256(claims(aud="some-other-api"))) == "wrong audience"


async def test_token_without_exp_is_rejected(auth: SharedSecretAuthenticator) -> None:
    assert await rejected(auth, hs256(claims(exp=None))) == "missing exp claim"


async def test_string_exp_is_rejected(auth: SharedSecretAuthenticator) -> None:
    token = hs256(claims(exp=str(int(time.time()) + 600)))
    assert await rejected(auth, token) == "malformed exp claim"


async def test_oversize_token_is_rejected(auth: SharedSecretAuthenticator) -> None:
    token = hs256(claims(padding="x" * MAX_TOKEN_CHARS))
    assert await rejected(auth, token) == "token too large"


@pytest.mark.parametrize(
    "garbage",
    [
        "not-a-jwt",
        "a.b.c",
        "a.b",
        "a.b.c.d",
        "....",
        b64url(b"[1, 2]") + "." + b64url(b"{}") + ".",
        b64url(b"{not json") + "." + b64url(b"{}") + ".",
        "ünïcödé.ünïcödé.ünïcödé",
    ],
)
async def test_garbage_is_a_malformed_token(auth: SharedSecretAuthenticator, garbage: str) -> None:
    assert await rejected(auth, garbage) == "malformed token"


async def test_non_json_payload_is_malformed(auth: SharedSecretAuthenticator) -> None:
    header = b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = b64url(b"definitely not json")
    signature = hmac.new(SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64url(signature)}"
    assert await rejected(auth, token) == "malformed token"


async def test_token_with_jku_header_is_rejected(auth: SharedSecretAuthenticator) -> None:
    token = hs256(claims(), jku="https://evil.example.com/jwks.json")
    assert "jku" in await rejected(auth, token)


async def test_missing_user_id_is_rejected(auth: SharedSecretAuthenticator) -> None:
    assert await rejected(auth, hs256(claims(sub=None))) == "missing user id claim"


async def test_empty_user_id_is_rejected(auth: SharedSecretAuthenticator) -> None:
    assert await rejected(auth, hs256(claims(sub=""))) == "malformed user id claim"


async def test_overlong_user_id_is_rejected(auth: SharedSecretAuthenticator) -> None:
    assert await rejected(auth, hs256(claims(sub="u" * 257))) == "user id claim too long"


async def test_user_id_with_control_characters_is_rejected(
    auth: SharedSecretAuthenticator,
) -> None:
    assert await rejected(auth, hs256(claims(sub="sam\nforged log line"))) == (
        "malformed user id claim"
    )


async def test_non_string_user_id_claim_is_rejected() -> None:
    auth = SharedSecretAuthenticator(SECRET, user_id_claim="uid")
    assert await rejected(auth, hs256(claims(uid=42))) == "malformed user id claim"


async def test_details_never_echo_the_token(auth: SharedSecretAuthenticator) -> None:
    now = int(time.time())
    for token in (
        hs256(claims(iat=now - 7200, exp=now - 3600)),
        hs256(claims(), OTHER_SECRET),
        hs256(claims(sub="")),
    ):
        detail = await rejected(auth, token)
        assert token not in detail
        assert all(part not in detail for part in token.split("."))


# -- configuration ----------------------------------------------------------------------


def test_short_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        SharedSecretAuthenticator(SECRET[:31])


def test_empty_issuer_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="issuer"):
        SharedSecretAuthenticator(SECRET, issuer="")


def test_excessive_leeway_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="leeway"):
        SharedSecretAuthenticator(SECRET, leeway_seconds=3600)


def test_every_construction_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SharedSecretAuthenticator(b"short", user_id_claim="", leeway_seconds=-1)
    assert len(caught.value.problems) == 3


def test_repr_does_not_reveal_the_secret() -> None:
    assert SECRET.decode() not in repr(SharedSecretAuthenticator(SECRET))


def test_minting_with_a_short_secret_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        mint_user_token(b"short", sub="sam")


def test_minting_without_sub_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="sub"):
        mint_user_token(SECRET, sub="")


def test_minting_with_non_positive_ttl_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="ttl"):
        mint_user_token(SECRET, sub="sam", ttl_seconds=0)


# Several audiences (OIDC Core 3.1.3.7): azp must name a party we trust.


def authorized(*parties: str) -> SharedSecretAuthenticator:
    return SharedSecretAuthenticator(SECRET, audience=AUDIENCE, authorized_parties=parties)


async def test_several_audiences_with_a_listed_authorized_party_are_accepted() -> None:
    # Auth0's shape: an access token for [our API, the tenant's userinfo], azp = the SPA.
    token = hs256(claims(aud=[AUDIENCE, "https://tenant/userinfo"], azp="spa-client-id"))
    user = await authorized("spa-client-id").authenticate(token)
    assert user.user_id == "user-1"


async def test_several_audiences_with_an_unlisted_authorized_party_are_refused() -> None:
    token = hs256(claims(aud=[AUDIENCE, "https://tenant/userinfo"], azp="another-client"))
    assert await rejected(authorized("spa-client-id"), token) == (
        "several audiences without a matching azp claim"
    )


async def test_several_audiences_without_azp_are_refused_even_with_listed_parties() -> None:
    token = hs256(claims(aud=[AUDIENCE, "https://tenant/userinfo"]))
    assert await rejected(authorized("spa-client-id"), token) == (
        "several audiences without a matching azp claim"
    )


async def test_a_single_audience_needs_no_azp() -> None:
    user = await authorized().authenticate(hs256(claims(aud=AUDIENCE)))
    assert user.user_id == "user-1"


@pytest.mark.parametrize("azp", [["spa-client-id"], {"id": "spa-client-id"}, 7, None])
async def test_an_azp_that_is_not_a_string_is_refused_not_an_error(azp: Any) -> None:
    token = hs256(claims(aud=[AUDIENCE, "https://tenant/userinfo"], azp=azp))
    assert await rejected(authorized("spa-client-id"), token) == (
        "several audiences without a matching azp claim"
    )
