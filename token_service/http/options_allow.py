"""`Allow` on OPTIONS answers lists every method of the path.

Litestar builds the automatic OPTIONS handler of a path when the path's first handler is
registered, and that handler keeps answering with the methods known then: with `GET` and
`POST /admin/bans` the answer was `Allow: OPTIONS, POST`. This hook rewrites the header
from the routes as finally built (a dictionary lookup, on OPTIONS responses only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.routes import ASGIRoute, HTTPRoute

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar import Litestar
    from litestar.types import Message, Scope


def allow_header_hook(app: Litestar) -> Callable[[Message, Scope], Awaitable[None]]:
    allowed = {
        route.path_format: ", ".join(sorted(route.methods)).encode()
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }
    # An ASGI handler answers every method itself; the ones it serves are in its `opt`.
    allowed.update(
        {
            route.path_format: ", ".join(sorted(route.route_handler.opt["allow"])).encode()
            for route in app.routes
            if isinstance(route, ASGIRoute) and "allow" in route.route_handler.opt
        }
    )

    async def fix_allow(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
            return
        methods = allowed.get(scope.get("path_template", ""))
        if methods is None:
            return
        headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"allow"]
        message["headers"] = [*headers, (b"allow", methods)]

    return fix_allow
