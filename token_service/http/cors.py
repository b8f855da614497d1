"""Cross-origin access for browser frontends: the origins in `TOKEN_SERVICE_CORS_ORIGINS`.

A frontend on another origin calls `POST /v1/participant-tokens` with its user's JWT in
the `Authorization` header. That is a non-simple request, so the browser sends a
preflight first, answered here. Only exact origins are allowed (the settings refuse
wildcards) and credentials mode is never allowed: the API authenticates with a bearer
header, not cookies, so no browser ever needs to send ambient credentials to it.
"""

from __future__ import annotations

from collections.abc import Sequence

from litestar.config.cors import CORSConfig
from litestar.types import Method

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
