"""App-user JWTs from an OpenID Connect provider (Cognito, Auth0, Okta, Keycloak...),
verified with the provider's published keys from a `JwksCache`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from token_service.auth._common import (
    ASYMMETRIC_ALGORITHMS,
    HMAC_ALGORITHMS,
    ClaimRules,
    screen_token,
)
from token_service.auth.jwks import JwksCache
from token_service.domain import AppUser
from token_service.errors import AuthenticationFailed, ConfigurationError


def algorithm_problems(algorithms: Sequence[str]) -> list[str]:
    """Why `algorithms` cannot be one issuer's allow-list (empty if it can).

    Never HMAC beside asymmetric algorithms: with both allowed, a token signed with
    HS256 using the provider's *public* key as the secret would verify (RFC 8725
    sec. 2.1). Never `none`, obviously.
    """
    if isinstance(algorithms, str):
        return ["algorithms must be a sequence of algorithm names, not a string"]
    if not algorithms:
        return ["algorithms must not be empty"]
    problems: list[str] = []
    if any(alg.lower() == "none" for alg in algorithms):
        problems.append("algorithm 'none' is never accepted")
    if any(alg in HMAC_ALGORITHMS for alg in algorithms):
        problems.append(
            "OIDC algorithms must be asymmetric: HMAC algorithms (HS*) belong to the shared "
            "secret and are never mixed with a provider's public keys"
        )
    unknown = sorted(
        alg
        for alg in algorithms
        if alg not in ASYMMETRIC_ALGORITHMS and alg not in HMAC_ALGORITHMS and alg.lower() != "none"
    )
    if unknown:
        problems.append(f"unsupported algorithms: {', '.join(unknown)}")
    return problems


class OidcAuthenticator:
    """Verifies an OIDC provider's JWTs: a key from the JWKS named by `kid`, an
    algorithm from the configured asymmetric list (and the key's own `alg`, if it
    has one), exact `iss`, `aud` containing the configured audience, `exp` required.
    """

    __slots__ = (
        "_algorithms",
        "_jwks",
        "_rules",
    )

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = ("RS256",),
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
        problems = algorithm_problems(algorithms)
        if not issuer:
            problems.append("issuer is required for OIDC")
        if not audience:
            problems.append("audience is required for OIDC")
        problems += [p for p in self._rules.problems() if not p.startswith(("issuer", "audience"))]
        if problems:
            raise ConfigurationError(problems)
        self._jwks = jwks
        self._algorithms = tuple(algorithms)

    def __repr__(self) -> str:
        return (
            f"OidcAuthenticator(issuer={self._rules.issuer!r}, audience={self._rules.audience!r}, "
            f"algorithms={self._algorithms!r})"
        )

    @property
    def algorithms(self) -> tuple[str, ...]:
        return self._algorithms

    @property
    def issuer(self) -> str | None:
        return self._rules.issuer

    @property
    def jwks(self) -> JwksCache:
        return self._jwks

    async def authenticate(self, token: str) -> AppUser:
        header = screen_token(token)
        alg: str = header["alg"]
        # Checked before the key lookup so an unacceptable token never costs a fetch.
        if alg not in self._algorithms:
            raise AuthenticationFailed("unsupported algorithm")
        key = await self._jwks.get_signing_key(header.get("kid"), alg)
        return self._rules.verify(token, key, self._algorithms)
