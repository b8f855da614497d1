"""What every app-user JWT verifier shares: the size cap, header screening before any
key is chosen, PyJWT error translation and the claims-to-`AppUser` step.

Kept apart from the verifiers so the shared-secret and OIDC paths cannot drift: a
rule tightened here (a header refused, a claim type checked) holds for both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jwt
from jwt.types import Options

from token_service.domain import AppUser, claim_at
from token_service.errors import AuthenticationFailed

#: Longest token accepted, checked before any base64 or JSON decoding so a huge
#: header cannot make us spend memory or CPU. Real IdP tokens are 1-3 KiB.
MAX_TOKEN_CHARS: Final = 8 * 1024
MAX_USER_ID_CHARS: Final = 256
MAX_LEEWAY_SECONDS: Final = 300

HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES256K",
        "ES384",
        "ES512",
        "EdDSA",
    }
)

#: Headers that name or carry the key to verify with. Honouring any of them lets the
#: token's author choose the key that "proves" it (RFC 8725 sec. 3.10), and no IdP
#: we support needs them for ID or access tokens, so a token carrying one is refused
#: outright rather than silently ignored: that also surfaces a forged token in logs.
#: `x5c` is merely ignored (never read) because some IdPs put it in headers.
UNTRUSTED_KEY_HEADERS: Final = ("jku", "x5u", "jwk")

_MISSING: Final = object()
#: A JWS in compact form: three base64url segments, unpadded (an empty signature is left
#: to the algorithm check, which names `alg: none` for what it is).
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def screen_token(token: str) -> dict[str, Any]:
    """Cheap checks before any cryptography; returns the *unverified* header.

    The header only steers which key and verifier to try; everything it says is
    checked again against configuration, never trusted as is.
    """
    if not token:
        raise AuthenticationFailed("missing bearer token")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationFailed("token too large")
    if _COMPACT_JWS.fullmatch(token) is None:
        # Base64url without padding (RFC 7515 sec. 2): a `=`, a space or any other character
        # would give one token several spellings, each passing a decoder that skips it.
        raise AuthenticationFailed("malformed token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise AuthenticationFailed("malformed token") from None
    except jwt.PyJWTError as exc:
        # The header decoded, but PyJWT refused what it says: a `crit` naming an
        # extension it does not implement, or a `kid` that is not a string.
        if "crit" in str(exc):
            raise AuthenticationFailed("unsupported critical header (crit)") from None
        raise AuthenticationFailed("malformed token") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise AuthenticationFailed("unsupported algorithm")
    if any(name in header for name in UNTRUSTED_KEY_HEADERS):
        raise AuthenticationFailed("token header names its own key (jku/x5u/jwk): not accepted")
    if "crit" in header:
        # We implement no JWS extension, so every `crit` names one we cannot honour
        # (RFC 7515 sec. 4.1.11). Refused before a JWKS lookup could cost a fetch, even
        # with a PyJWT that lets `crit: []` or a supported extension through above.
        raise AuthenticationFailed("unsupported critical header (crit)")
    return header


def decode_verified(
    token: str,
    key: Any,
    *,
    algorithms: Sequence[str],
    issuer: str | None,
    audience: str | None,
    leeway_seconds: float,
    authorized_parties: Collection[str] = (),
) -> dict[str, Any]:
    """Verify signature and registered claims; map every PyJWT failure to one detail."""
    options: Options = {"require": ["exp"], "enforce_minimum_key_length": True}
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=list(algorithms),
            options=options,
            issuer=issuer,
            audience=audience,
            leeway=leeway_seconds,
        )
    except jwt.PyJWTError as exc:
        raise translate_error(exc) from None
    # PyJWT runs int() over the time claims, so `"exp": "9999999999"` would pass;
    # RFC 7519 says NumericDate, and a string there means a confused or forged issuer.
    for name in ("exp", "nbf", "iat"):
        value = payload.get(name, _MISSING)
        if value is not _MISSING and not _is_numeric_date(value):
            raise AuthenticationFailed(f"malformed {name} claim")
    if audience is not None:
        check_authorized_party(payload, audience, authorized_parties)
    return payload


def check_authorized_party(
    payload: Mapping[str, Any], audience: str, authorized_parties: Collection[str] = ()
) -> None:
    """A token for several audiences must name a party we trust in `azp`.

    OpenID Connect Core 3.1.3.7: with several `aud` values, `azp` says which party the
    token was issued to; a token minted for some other client that merely lists us too
    must not be accepted as ours. Trusted: our own audience, and the client ids the
    operator lists (`TOKEN_SERVICE_AUTH_AUTHORIZED_PARTIES`): Auth0, for one, issues
    access tokens for `[our API, its userinfo]` with `azp` = the front-end's client id.
    """
    aud = payload.get("aud")
    if not isinstance(aud, list) or len(set(aud)) <= 1:
        return
    azp = payload.get("azp")
    # A forged token may carry any JSON there: only a string can name a party.
    if not isinstance(azp, str) or (azp != audience and azp not in authorized_parties):
        raise AuthenticationFailed("several audiences without a matching azp claim")


def _is_numeric_date(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def translate_error(exc: jwt.PyJWTError) -> AuthenticationFailed:
    """A specific, client-safe detail for a PyJWT failure (never the token itself)."""
    # Order matters: several of these subclass DecodeError / InvalidTokenError.
    detail: str
    if isinstance(exc, jwt.ExpiredSignatureError):
        detail = "token expired"
    elif isinstance(exc, jwt.ImmatureSignatureError):
        detail = "token not yet valid"
    elif isinstance(exc, jwt.InvalidAudienceError):
        detail = "wrong audience"
    elif isinstance(exc, jwt.InvalidIssuerError):
        detail = "wrong issuer"
    elif isinstance(exc, jwt.MissingRequiredClaimError):
        # `claim` is one of the names we asked PyJWT to require, not client input.
        detail = f"missing {exc.claim} claim"
    elif isinstance(exc, jwt.InvalidSignatureError):
        detail = "invalid signature"
    elif isinstance(exc, jwt.InvalidAlgorithmError):
        detail = "unsupported algorithm"
    elif isinstance(exc, jwt.InvalidKeyError):
        detail = "unusable signing key"
    elif isinstance(exc, jwt.DecodeError):
        detail = "malformed token"
    else:
        detail = "invalid token"
    return AuthenticationFailed(detail)


def extract_roles(claims: Mapping[str, Any], roles_claim: str) -> frozenset[str]:
    """Roles as a list of strings or one space-separated string; absent means none."""
    value = claim_at(claims, roles_claim, _MISSING)
    if value is _MISSING or value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return frozenset(item for item in value if item)
    raise AuthenticationFailed("malformed roles claim")


def extract_user_id(claims: Mapping[str, Any], user_id_claim: str) -> str:
    value = claim_at(claims, user_id_claim, _MISSING)
    if value is _MISSING or value is None:
        raise AuthenticationFailed("missing user id claim")
    if not isinstance(value, str) or not value.strip():
        raise AuthenticationFailed("malformed user id claim")
    if len(value) > MAX_USER_ID_CHARS:
        raise AuthenticationFailed("user id claim too long")
    # The id reaches logs and the audit mapping: control characters there would let
    # an IdP-side value forge log lines.
    if not value.isprintable():
        raise AuthenticationFailed("malformed user id claim")
    return value


def build_user(claims: dict[str, Any], *, user_id_claim: str, roles_claim: str) -> AppUser:
    iss = claims.get("iss")
    return AppUser(
        user_id=extract_user_id(claims, user_id_claim),
        roles=extract_roles(claims, roles_claim),
        # An empty `iss` names no issuer: the same user as a token without one, as the
        # rate-limit and mapping keys (`domain.user_key`) already count it.
        issuer=iss if isinstance(iss, str) and iss else None,
        claims=claims,
    )


@dataclass(frozen=True)
class ClaimRules:
    """What both verifiers check once a signature is good, and how they read the user:
    the expected issuer and audience, trusted `azp` parties, clock leeway, and the claims
    holding the user id and roles. Validated once, here, for both."""

    issuer: str | None
    audience: str | None
    user_id_claim: str = "sub"
    roles_claim: str = "roles"
    leeway_seconds: float = 30
    authorized_parties: frozenset[str] = frozenset()

    def problems(self) -> list[str]:
        """Problems with these rules, for one ConfigurationError with the verifier's own."""
        problems: list[str] = []
        if self.issuer == "":
            problems.append("issuer must be omitted or non-empty")
        if self.audience == "":
            problems.append("audience must be omitted or non-empty")
        if not self.user_id_claim:
            problems.append("user_id_claim must not be empty")
        if not self.roles_claim:
            problems.append("roles_claim must not be empty")
        if not 0 <= self.leeway_seconds <= MAX_LEEWAY_SECONDS:
            problems.append(f"leeway_seconds must be between 0 and {MAX_LEEWAY_SECONDS}")
        return problems

    def verify(self, token: str, key: Any, algorithms: Sequence[str]) -> AppUser:
        """The user of a token whose header passed `screen_token`, verified with `key`."""
        claims = decode_verified(
            token,
            key,
            algorithms=algorithms,
            issuer=self.issuer,
            audience=self.audience,
            leeway_seconds=self.leeway_seconds,
            authorized_parties=self.authorized_parties,
        )
        return build_user(claims, user_id_claim=self.user_id_claim, roles_claim=self.roles_claim)
