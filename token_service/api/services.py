"""What the handlers need from the composition root, as one typed container.

`app.create_app` builds it; handlers receive it by dependency injection and never
construct an adapter themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from token_service.auth import Authenticator
from token_service.domain import AppUser, Grant, TokenRequest
from token_service.issuing import Issuer
from token_service.keys import KeyRing

#: A readiness check: returns None when healthy, else a short reason (no secrets).
ReadinessCheck = Callable[[], Awaitable[str | None]]


class Decider(Protocol):
    def decide(self, user: AppUser, request: TokenRequest) -> Grant: ...


class AdminVerifier(Protocol):
    def verify(self, presented: str) -> bool: ...


@dataclass
class Services:
    authenticator: Authenticator
    policy: Decider
    issuer: Issuer
    key_ring: KeyRing
    admin: AdminVerifier | None
    readiness: Mapping[str, ReadinessCheck] = field(default_factory=dict)
