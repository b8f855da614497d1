"""What the handlers need from the composition root, as one typed container.

`app.create_app` builds it; handlers receive it by dependency injection and never
construct an adapter themselves.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from token_service.admission.failures import FailureThrottle
from token_service.auth import Authenticator
from token_service.http.client_ip import Network, ProxyHeader
from token_service.keys import KeyRing
from token_service.mapping.moderation import Moderation
from token_service.mapping.store import MappingStore
from token_service.mapping.users import UserNaming
from token_service.tokens.desk import TokenDesk
from token_service.tokens.exchange import Exchanger

#: A readiness probe: returns None when healthy, else a short reason (no secrets).
Probe = Callable[[], Awaitable[str | None]]


class CheckStatus(enum.StrEnum):
    """What one readiness check found."""

    OK = "ok"
    #: Failing, yet this replica still serves part of its traffic and no other replica
    #: would do better (a dependency every replica shares): reported, and still ready.
    DEGRADED = "degraded"
    #: This replica cannot serve what another one could: out of the load balancer.
    FAILED = "failed"


@dataclass(frozen=True)
class ReadinessCheck:
    probe: Probe
    #: What a failing probe makes the check: `DEGRADED` or `FAILED` (decided per check
    #: and mode in `bootstrap.readiness`).
    failing: CheckStatus


class AdminVerifier(Protocol):
    def verify(self, presented: str) -> bool: ...

    def actor(self, presented: str) -> str: ...


class Services:
    """Not a dataclass on purpose: Litestar would then validate every field's type."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        desk: TokenDesk,
        key_ring: KeyRing,
        admin: AdminVerifier | None,
        mapping: MappingStore,
        moderation: Moderation,
        trusted_proxies: tuple[Network, ...] = (),
        events_secret: str | None = None,
        readiness: Mapping[str, ReadinessCheck] | None = None,
        exchanger: Exchanger | None = None,
        proxy_header: ProxyHeader = ProxyHeader.X_FORWARDED_FOR,
        user_naming: UserNaming | None = None,
        admin_throttle: FailureThrottle | None = None,
        on_admin_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.desk = desk
        self.key_ring = key_ring
        self.admin = admin
        self.mapping = mapping
        self.moderation = moderation
        self.trusted_proxies = trusted_proxies
        self.events_secret = events_secret
        self.readiness: Mapping[str, ReadinessCheck] = readiness or {}
        self.exchanger = exchanger
        self.proxy_header = proxy_header
        #: How an operator's user id and issuer are read (bans, lookups).
        self.user_naming = user_naming or UserNaming()
        #: Failed admin authentications per client IP: too many, and the IP is locked out.
        self.admin_throttle = admin_throttle
        #: Counts each refused admin request by reason (missing, invalid, throttled).
        self.on_admin_refused = on_admin_refused
