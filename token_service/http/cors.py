"""Cross-origin access for browser frontends: the origins in `TOKEN_SERVICE_CORS_ORIGINS`,
on the routes a browser app calls, and on no other.

A frontend on another origin calls `POST /v1/participant-tokens` (and the exchange route)
with its user's JWT in the `Authorization` header. That is a non-simple request, so the
browser sends a preflight first, answered here. Only exact origins are allowed (the
settings refuse wildcards) and credentials mode is never allowed: the API authenticates
with a bearer header, not cookies, so no browser ever needs to send ambient credentials
to it.

Every other route (`/admin/...`, `/metrics`, `/schema`, the events webhook, the probes)
answers a preflight without any `Access-Control-Allow-*` field and its responses carry no
CORS field, so a script on an allowed origin (an XSS in the app, a compromised
dependency of it) cannot drive the admin API from a browser that holds an admin token.
The decision is made on the matched route template (the middleware runs after routing),
so no spelling of a path reaches another route's CORS answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from litestar.config.cors import CORSConfig

# Litestar's own CORS middleware, applied per route here instead of to the whole app (its
# `cors_config` wraps the router, before any route is known). Private since Litestar 2.9,
# checked against 2.25: tests/packaging/test_library_internals.py holds its place and
# signature, tests/http/test_demo_page.py and tests/security/test_cors_scope.py its
# behaviour.
from litestar.middleware._internal.cors import CORSMiddleware
from litestar.types import ASGIApp, Method, Receive, Scope, Send

#: Methods a browser may use cross-origin; admin deletions stay same-origin or server-side.
ALLOWED_METHODS: tuple[Method, ...] = ("GET", "POST")
#: Request headers a frontend sends besides the CORS-safelisted ones.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-Id")
#: Response headers a frontend may read: to correlate, back off, and see why it was refused.
EXPOSED_HEADERS = (
    "X-Request-Id",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "WWW-Authenticate",
)
#: How long a browser may cache a preflight answer.
PREFLIGHT_MAX_AGE_SECONDS = 600
#: The route templates a browser app calls (docs/api.md): issuing a participant token and
#: exchanging it. tests/security/test_cors_scope.py checks each is a route of the app.
BROWSER_ROUTES = frozenset(
    {
        "/v1/participant-tokens",
        "/v1/participant-tokens/{participantId}/exchange",
    }
)


def cors_config(origins: Sequence[str]) -> CORSConfig | None:
    """The CORS configuration, or None (no CORS headers at all) when no origin is allowed."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        allow_credentials=False,
        expose_headers=list(EXPOSED_HEADERS),
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )


def cors_middleware(
    origins: Sequence[str], routes: frozenset[str] = BROWSER_ROUTES
) -> list[Callable[[ASGIApp], ASGIApp]]:
    """The app middleware answering CORS on `routes` only (none when no origin is allowed)."""
    config = cors_config(origins)
    if config is None:
        return []

    def factory(app: ASGIApp) -> ASGIApp:
        with_cors = CORSMiddleware(app=app, config=config)

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope.get("path_template") in routes:
                await with_cors(scope, receive, send)
            else:
                await app(scope, receive, send)

        return middleware

    return [factory]
