"""Authentication guards: they run before the body is parsed, so an anonymous caller
learns nothing about the request schema and costs no JSON decoding."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from token_service.auth import parse_bearer
from token_service.errors import AuthenticationFailed
from token_service.http.services import Services

USER_STATE_KEY = "app_user"
ADMIN_STATE_KEY = "admin_id"
#: The key administration's audit name of the admin: which configured token (`AdminTokens.actor`).
ADMIN_ACTOR_KEY = "admin_actor"


def _services(connection: ASGIConnection[Any, Any, Any, Any]) -> Services:
    services: Services = connection.app.state["services"]
    return services


def presented_bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The bearer token of the request's one `Authorization` header. Several are refused:
    which one counts would depend on who reads them (a proxy, a WAF, this service)."""
    fields = connection.headers.getall("authorization", [])
    if len(fields) > 1:
        raise AuthenticationFailed("several Authorization headers")
    return parse_bearer(fields[0] if fields else None)


async def authenticate_app_user(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Verify the caller's app JWT and keep the user in the connection's state."""
    token = presented_bearer(connection)
    user = await _services(connection).authenticator.authenticate(token)
    connection.state[USER_STATE_KEY] = user


async def require_app_user(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    await authenticate_app_user(connection)


def app_user_first(
    hook: Callable[[Request[Any, Any, Any]], Awaitable[None]],
) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """`hook` as a `before_request`, preceded by `require_app_user`'s check.

    For the token route, the hottest one: Litestar hands every guard a copy of the route
    handler (~25 µs per request here), while a before_request hook costs nothing extra.
    The order is the guard's: the caller is authenticated before the body is looked at.
    """

    async def before(request: Request[Any, Any, Any]) -> None:
        await authenticate_app_user(request)
        await hook(request)

    return before


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    admin = _services(connection).admin
    if admin is None:
        raise AuthenticationFailed("admin API disabled: TOKEN_SERVICE_ADMIN_TOKENS is not set")
    token = presented_bearer(connection)
    if not admin.verify(token):
        raise AuthenticationFailed("invalid admin token")
    # Audit lines and records name the admin by a fingerprint of its token, never the token.
    connection.state[ADMIN_STATE_KEY] = "admin:" + hashlib.sha256(token.encode()).hexdigest()[:12]
    connection.state[ADMIN_ACTOR_KEY] = admin.actor(token)
