"""Which routes each listener serves when admin routes have a port of their own.

With `TOKEN_SERVICE_ADMIN_PORT` set, the process listens twice and the app tells the
listeners apart by the local port of the connection. The public listener answers 404
for `/admin/...` and `/metrics`, so it can be exposed alone; the admin listener serves
only those and the probes. Without an admin port, every route is on the one listener.

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

ADMIN_PREFIX = "/admin"
#: Operational routes that leave the public listener along with `/admin`.
ADMIN_LISTENER_ONLY = frozenset({"/metrics"})
#: Probes answer on both, so each listener can be checked on its own port.
PROBES = frozenset({"/healthz", "/readyz"})


class Listener(enum.StrEnum):
    PUBLIC = "public"
    ADMIN = "admin"


def is_admin_route(template: str) -> bool:
    return template == ADMIN_PREFIX or template.startswith(ADMIN_PREFIX + "/")


def serves(listener: Listener, template: str) -> bool:
    """Whether `listener` serves the route with this template (admin port configured)."""
    admin_side = is_admin_route(template) or template in ADMIN_LISTENER_ONLY
    if listener is Listener.ADMIN:
        return admin_side or template in PROBES
    return not admin_side


def listener_of(scope: Any, admin_port: int) -> Listener:
    server = scope.get("server")
    if server is not None and len(server) > 1 and server[1] == admin_port:
        return Listener.ADMIN
    return Listener.PUBLIC


def listener_guard(admin_port: int | None) -> list[Guard]:
    """The app-level guards that keep each listener to its routes (none without a port)."""
    if admin_port is None:
        return []
    port = admin_port

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        template = connection.scope.get("path_template") or connection.scope["path"]
        if not serves(listener_of(connection.scope, port), template):
            # The same answer as for a path that does not exist at all.
            raise NotFoundException()

    return [guard]
