"""What the handlers need from the composition root, as one typed container.

`app.create_app` builds it; handlers receive it by dependency injection and never
construct an adapter themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from token_service.auth import Authenticator
from token_service.client_ip import Network
from token_service.domain import AppUser, Grant, TokenRequest
from token_service.issuing import Issuer
from token_service.keys import KeyRing
from token_service.ratelimit import RateLimiter, RateLimits, RateSpec

#: A readiness check: returns None when healthy, else a short reason (no secrets).
ReadinessCheck = Callable[[], Awaitable[str | None]]


class RateOverrides(Protocol):
    @property
    def user(self) -> RateSpec | None: ...

    @property
    def ip(self) -> RateSpec | None: ...

    @property
    def stage(self) -> RateSpec | None: ...


class Decider(Protocol):
    def decide(self, user: AppUser, request: TokenRequest) -> Grant: ...

    def rate_limits_for(self, user: AppUser, stage_arn: str) -> RateOverrides: ...


class AdminVerifier(Protocol):
    def verify(self, presented: str) -> bool: ...


class Services:
    """Not a dataclass on purpose: Litestar would then validate every field's type."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        policy: Decider,
        issuer: Issuer,
        key_ring: KeyRing,
        admin: AdminVerifier | None,
        limiter: RateLimiter,
        rate_limits: RateLimits,
        trusted_proxies: tuple[Network, ...] = (),
        readiness: Mapping[str, ReadinessCheck] | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.policy = policy
        self.issuer = issuer
        self.key_ring = key_ring
        self.admin = admin
        self.limiter = limiter
        self.rate_limits = rate_limits
        self.trusted_proxies = trusted_proxies
        self.readiness: Mapping[str, ReadinessCheck] = readiness or {}
