"""App-user JWTs signed with one HMAC secret shared between the app and this service
(HS256 only), and the matching minting helper for `token-service user-token`,
development and tests.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection, Sequence
from typing import Any, Final

import jwt

from token_service.auth._common import (
    MAX_USER_ID_CHARS,
    ClaimRules,
    screen_token,
)
from token_service.domain import AppUser
from token_service.errors import AuthenticationFailed, ConfigurationError

ALGORITHM: Final = "HS256"
#: RFC 7518 sec. 3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES: Final = 32
#: Verified tokens remembered per authenticator (bounded: memory stays flat under load).
VERIFIED_CACHE_SIZE: Final = 4096


def _secret_problems(secret: bytes) -> list[str]:
    if len(secret) < MIN_SECRET_BYTES:
        return [f"shared secret must be at least {MIN_SECRET_BYTES} bytes (got {len(secret)})"]
    return []


class SharedSecretAuthenticator:
    """Verifies HS256 app-user JWTs: signature, `exp` (required), and `iss`/`aud`
    when configured (exact match)."""

    __slots__ = ("_rules", "_secret", "_verified")

    #: The one algorithm this verifier accepts (used by CompositeAuthenticator).
    algorithms: Final = (ALGORITHM,)

    def __init__(
        self,
        secret: bytes,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        user_id_claim: str = "sub",
        roles_claim: str = "roles",
        leeway_seconds: float = 30,
        authorized_parties: Collection[str] = (),
    ) -> None:
        self._rules = ClaimRules(
            issuer,
            audience,
            user_id_claim,
            roles_claim,
            leeway_seconds,
            frozenset(authorized_parties),
        )
        problems = _secret_problems(secret) + self._rules.problems()
        if problems:
            raise ConfigurationError(problems)
        self._secret = secret
        # token -> (user, exp): a token that verified once is the same token until its
        # `exp` (the key is the whole token, signature included; only successes are kept).
        self._verified: dict[str, tuple[AppUser, float]] = {}

    def __repr__(self) -> str:
        # Never the secret.
        rules = self._rules
        return f"SharedSecretAuthenticator(issuer={rules.issuer!r}, audience={rules.audience!r})"

    async def authenticate(self, token: str) -> AppUser:
        return self.verify(token)

    def verify(self, token: str) -> AppUser:
        """The synchronous core (HMAC is cheap; nothing here waits on I/O)."""
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() < cached[1]:
                return cached[0]
            del self._verified[token]
        user = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        # Remembered until `exp` itself, not `exp` + leeway: past it, verify again.
        self._verified[token] = (user, float(user.claims["exp"]))
        return user

    def _verify(self, token: str) -> AppUser:
        header = screen_token(token)
        if header["alg"] != ALGORITHM:
            raise AuthenticationFailed("unsupported algorithm")
        return self._rules.verify(token, self._secret, self.algorithms)


def mint_user_token(
    secret: bytes,
    *,
    sub: str,
    roles: Sequence[str] = (),
    ttl_seconds: int = 3600,
    issuer: str | None = None,
    audience: str | None = None,
    now: int | None = None,
) -> str:
    """An HS256 app-user JWT that `SharedSecretAuthenticator` accepts.

    Roles go in the `roles` claim as a list (omitted when empty); a random `jti`
    makes every minted token distinct.
    """
    problems = _secret_problems(secret)
    if not sub or len(sub) > MAX_USER_ID_CHARS:
        problems.append(f"sub must be 1 to {MAX_USER_ID_CHARS} characters")
    if isinstance(roles, str):
        problems.append("roles must be a sequence of role names, not a string")
    if ttl_seconds <= 0:
        problems.append("ttl_seconds must be positive")
    if problems:
        raise ConfigurationError(problems)
    issued_at = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "sub": sub,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": secrets.token_urlsafe(16),
    }
    if roles:
        claims["roles"] = list(roles)
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
