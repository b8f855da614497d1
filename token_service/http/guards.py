"""Authentication guards: they run before the body is parsed, so an anonymous caller
learns nothing about the request schema and costs no JSON decoding."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from token_service.auth import parse_bearer
from token_service.domain import AppUser
from token_service.errors import AuthenticationFailed, RateLimited
from token_service.http.client_ip import Address, address_text, limit_subject, scope_address
from token_service.http.services import Services
from token_service.observability.tracing import span

USER_STATE_KEY = "app_user"
ADMIN_STATE_KEY = "admin_id"
#: The key administration's audit name of the admin: which configured token (`AdminTokens.actor`).
ADMIN_ACTOR_KEY = "admin_actor"
#: The name failed admin authentications are counted under, per client IP
#: (`ts:{ts}:rl:admin-auth:<ip>` in Redis).
ADMIN_AUTH_LIMIT = "admin-auth"
#: Missing, wrong and throttled admin credentials: security events, beside the admin audit.
audit = logging.getLogger("token_service.audit")


def _services(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = connection.app.state["services"]
    return services


def bearer_of(fields: Sequence[str]) -> str:
    """The bearer token of a request's one `Authorization` header, given its lines. Several
    are refused: which one counts would depend on who reads them (a proxy, a WAF, us)."""
    if len(fields) > 1:
        raise AuthenticationFailed("several Authorization headers")
    return parse_bearer(fields[0] if fields else None)


def presented_bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """`bearer_of` the connection's `Authorization` lines."""
    return bearer_of(connection.headers.getall("authorization", []))


async def app_user_of(services: Services, authorization: Sequence[str]) -> AppUser:
    """The app user whose JWT the `Authorization` lines carry, verified: for the guard
    below, and for the token route, which reads the lines off the scope itself."""
    with span("authenticate"):
        return await services.authenticator.authenticate(bearer_of(authorization))


async def authenticate_app_user(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Verify the caller's app JWT and keep the user in the connection's state."""
    connection.state[USER_STATE_KEY] = await app_user_of(
        _services(connection), connection.headers.getall("authorization", [])
    )


async def require_app_user(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    await authenticate_app_user(connection)


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    token = await authenticate_admin(connection)
    admin = _services(connection).admin
    # Audit lines and records name the admin by a fingerprint of its token, never the token.
    connection.state[ADMIN_STATE_KEY] = "admin:" + hashlib.sha256(token.encode()).hexdigest()[:12]
    connection.state[ADMIN_ACTOR_KEY] = admin.actor(token) if admin is not None else "admin"


def _checked_admin_token(
    connection: ASGIConnection[Any, Any, Any, Any], services: Services
) -> str | AuthenticationFailed:
    """The presented admin token when it is one of the configured ones, else why not."""
    try:
        token = presented_bearer(connection)
    except AuthenticationFailed as exc:
        return exc
    if services.admin is None:
        return AuthenticationFailed("admin API disabled: TOKEN_SERVICE_ADMIN_TOKENS is not set")
    if not services.admin.verify(token):
        return AuthenticationFailed("invalid admin token")
    return token


async def authenticate_admin(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The request's admin token, checked in constant time (`AdminTokens.verify`).

    Every refusal is logged (client IP, method, path, why; never the token, nor any part
    or digest of it) and counted. Each failure, a missing token included, is spent from the
    client IP's allowance (`TOKEN_SERVICE_ADMIN_AUTH_FAILURE_RATE`); once it is spent,
    every admin request from that IP is answered 429, a right token too: otherwise the
    429s would tell an attacker which guess was right. Successes spend nothing.
    """
    services = _services(connection)
    address = request_address(connection, services)
    subject = limit_subject(address)
    client_ip = address_text(address) if address is not None else None
    checked = _checked_admin_token(connection, services)
    failed = isinstance(checked, AuthenticationFailed)
    throttle = services.admin_throttle
    retry_after = None
    if throttle is not None:
        retry_after = await (throttle.failed(subject) if failed else throttle.locked(subject))
    if retry_after is not None:
        log_refusal(
            connection,
            "admin_auth_throttled",
            "throttled",
            client_ip,
            retryAfter=round(retry_after, 3),
        )
        _count_refusal(services, "throttled")
        raise RateLimited(
            "too many failed admin authentications from this address; retry later",
            retry_after=retry_after,
        )
    if isinstance(checked, AuthenticationFailed):
        reason = failure_reason(checked)
        log_refusal(connection, "admin_auth_failed", reason, client_ip, detail=checked.detail)
        _count_refusal(services, reason)
        raise checked
    return checked


def failure_reason(failure: AuthenticationFailed) -> str:
    """`missing` when no credential was presented, `invalid` for anything else."""
    return "missing" if failure.detail == "missing bearer token" else "invalid"


def request_address(
    connection: ASGIConnection[Any, Any, Any, Any], services: Services
) -> Address | None:
    """The client's address: the peer, or what the trusted proxies' one header says.

    From the raw header lines, not a mapping of them: every line of a repeated header
    counts (see `client_ip`)."""
    return scope_address(connection.scope, services.trusted_proxies, services.proxy_header)


def client_ip_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The client's address as the rate limits see it (trusted proxies only), for logs."""
    address = request_address(connection, _services(connection))
    return address_text(address) if address is not None else None


def log_refusal(
    connection: ASGIConnection[Any, Any, Any, Any],
    event: str,
    reason: str,
    client_ip: str | None,
    **details: Any,
) -> None:
    """One WARNING on the audit logger for a refused credential: who (the client IP), what
    (method, path) and why; never the credential, nor any part or digest of it."""
    audit.warning(
        "%s (%s)",
        event,
        reason,
        extra={
            "event": event,
            "reason": reason,
            "clientIp": client_ip,
            "method": connection.scope.get("method"),
            "path": connection.scope["path"],
            **details,
        },
    )


def _count_refusal(services: Services, reason: str) -> None:
    if services.on_admin_refused is not None:
        services.on_admin_refused(reason)
