"""Which routes each listener serves, and to whom the operational routes answer.

With `TOKEN_SERVICE_ADMIN_PORT` set, the process listens twice and the app tells the
listeners apart by the local port of the connection. The public listener answers 404
for `/admin/...`, and for `/metrics` and `/schema/...` unless they are public
(`TOKEN_SERVICE_METRICS_PUBLIC`, `TOKEN_SERVICE_SCHEMA_PUBLIC`), so it can be exposed
alone; the admin listener serves those and the probes. Without an admin port, every route
is on the one listener, and an operational route that is not public answers 404 unless the
request carries an admin token: 404, not 401, so the service port does not advertise it.

The decision is made on the matched route template (a guard, after routing), never on
the raw path, so no spelling of a path (`//admin`, percent-encoding, a trailing slash)
reaches an admin route through the public port.
"""

from __future__ import annotations

import enum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from token_service.errors import AuthenticationFailed, RateLimited
from token_service.http.guards import authenticate_admin

ADMIN_PREFIX = "/admin"
#: Probes answer on both, so each listener can be checked on its own port.
PROBES = frozenset({"/healthz", "/readyz"})


class Listener(enum.StrEnum):
    PUBLIC = "public"
    ADMIN = "admin"


class OpsRoute(enum.StrEnum):
    """Operational routes, public or not by setting (see `ops_route`)."""

    METRICS = "metrics"
    #: The OpenAPI document and its viewers, `/schema/...`.
    SCHEMA = "schema"


def is_admin_route(template: str) -> bool:
    return template == ADMIN_PREFIX or template.startswith(ADMIN_PREFIX + "/")


def ops_route(template: str) -> OpsRoute | None:
    if template == "/metrics":
        return OpsRoute.METRICS
    if template == "/schema" or template.startswith("/schema/"):
        return OpsRoute.SCHEMA
    return None


def serves(listener: Listener, template: str, private: frozenset[OpsRoute] = frozenset()) -> bool:
    """Whether `listener` serves the route with this template (admin port configured):
    the admin listener serves admin and operational routes and the probes; the public
    one every route but admin routes and the operational routes that are `private`."""
    if is_admin_route(template):
        return listener is Listener.ADMIN
    ops = ops_route(template)
    if ops is not None:
        return listener is Listener.ADMIN or ops not in private
    return listener is Listener.PUBLIC or template in PROBES


def listener_of(scope: Any, admin_port: int) -> Listener:
    server = scope.get("server")
    if server is not None and len(server) > 1 and server[1] == admin_port:
        return Listener.ADMIN
    return Listener.PUBLIC


async def _admin_or_not_found(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Let an admin through; anyone else gets the answer of a path that does not exist.

    A request without credentials is not an admin's failed attempt (a scanner, a scraper
    left without its token): plain 404, nothing spent. A presented token goes through the
    admin check, so a wrong one is logged and spent from the IP's allowance like any other
    (else this route would be a guessing oracle without a throttle)."""
    if not connection.headers.getall("authorization", []):
        raise NotFoundException()
    try:
        await authenticate_admin(connection)
    except (AuthenticationFailed, RateLimited):
        raise NotFoundException() from None


def listener_guard(
    admin_port: int | None, private: frozenset[OpsRoute] = frozenset()
) -> list[Guard]:
    """The app-level guards that keep each listener to its routes, and the operational
    routes that are not public to admins (none when everything is public on one port)."""
    if admin_port is None and not private:
        return []
    port = admin_port

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        template = connection.scope.get("path_template") or connection.scope["path"]
        if port is not None:
            if not serves(listener_of(connection.scope, port), template, private):
                # The same answer as for a path that does not exist at all.
                raise NotFoundException()
            return
        if ops_route(template) in private:
            await _admin_or_not_found(connection)

    return [guard]
