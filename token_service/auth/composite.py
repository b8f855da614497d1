"""The `Authenticator` interface, and the router used when both the shared secret
and an OIDC provider are configured.
"""

from __future__ import annotations

from typing import Protocol

from token_service.auth._common import ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, screen_token
from token_service.auth.oidc import OidcAuthenticator
from token_service.auth.shared_secret import SharedSecretAuthenticator
from token_service.domain import AppUser
from token_service.errors import AuthenticationFailed, ConfigurationError


class Authenticator(Protocol):
    """Turns an app-user bearer token into an `AppUser`, or raises AuthenticationFailed."""

    async def authenticate(self, token: str) -> AppUser: ...


class CompositeAuthenticator:
    """Sends each token to the one verifier whose algorithm family its header names.

    Routing on the *unverified* `alg` is safe because it only picks a verifier: each
    verifier still enforces its own algorithm list and keys, so a forged `alg` can
    only reach a verifier that then refuses it. HMAC tokens go to the shared secret,
    asymmetric ones to OIDC; `none`, unknown, or a family with no verifier
    configured is "unsupported algorithm". A shared-secret token whose `iss` is the
    provider's is refused: it would be one of the provider's users.
    """

    __slots__ = ("_oidc", "_shared")

    def __init__(
        self,
        shared: SharedSecretAuthenticator | None,
        oidc: OidcAuthenticator | None,
    ) -> None:
        if shared is None and oidc is None:
            raise ConfigurationError(["no app-user authentication configured"])
        self._shared = shared
        self._oidc = oidc

    def __repr__(self) -> str:
        return f"CompositeAuthenticator(shared={self._shared!r}, oidc={self._oidc!r})"

    async def authenticate(self, token: str) -> AppUser:
        alg = screen_token(token)["alg"]
        if alg in HMAC_ALGORITHMS and self._shared is not None:
            user = await self._shared.authenticate(token)
            if self._oidc is not None and user.issuer == self._oidc.issuer:
                # A user is (issuer, user id): the secret's holder vouches for its own
                # users, not the provider's, so it may not write the provider's `iss`.
                raise AuthenticationFailed("a shared-secret token names the OIDC issuer")
            return user
        if alg in ASYMMETRIC_ALGORITHMS and self._oidc is not None:
            return await self._oidc.authenticate(token)
        raise AuthenticationFailed("unsupported algorithm")
