"""The access log: one JSON line per request, whatever its status (401, 404, 429, probes).

Fields: method, route (the template, `/admin/participants/{participantId}`, never the raw
path: a path may carry ids, and its shape is what an operator aggregates on), status,
duration in milliseconds, the client's address as the trusted-proxy rules decide it, and
the bytes of the answer's body; the formatter adds the time, level, request id and, with
tracing on, the trace and span ids. Never a header value, a query string, a body or a
token. Probes and the scrape (`/healthz`, `/readyz`, `/metrics`) are logged, sampled or
left out as configured (`TOKEN_SERVICE_ACCESS_LOG_PROBES`).
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from token_service.http.client_ip import Network, ProxyHeader, client_address

log = logging.getLogger("token_service.access")

PROBE_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
#: The route of a request no route matched (a 404, a 405): never its raw path.
UNMATCHED: Final = "<unmatched>"


class ProbeLogging(enum.StrEnum):
    """What the access log does with probes and scrapes: every 10 s from every kubelet and
    Prometheus, they would drown the requests that matter."""

    OFF = "off"
    ON = "on"
    SAMPLED = "sampled"


def access_log_middleware(
    *,
    probes: ProbeLogging,
    probe_sample_rate: float,
    trusted_proxies: Sequence[Network],
    proxy_header: ProxyHeader,
    dice: Callable[[], float] = random.random,
) -> Callable[[ASGIApp], ASGIApp]:
    """A Litestar middleware factory writing one access-log line per HTTP request."""

    def logged(path: str) -> bool:
        if path not in PROBE_PATHS:
            return True
        if probes is ProbeLogging.SAMPLED:
            return dice() < probe_sample_rate
        return probes is ProbeLogging.ON

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            # Routing has run (Litestar applies middleware per route): the template is known.
            route = scope.get("path_template") or UNMATCHED
            if scope["type"] != ScopeType.HTTP or not logged(route):
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500  # what the client gets when the app raises before answering
            sent = 0

            async def counting_send(message: Message) -> None:
                nonlocal status, sent
                if message["type"] == "http.response.start":
                    status = message["status"]
                elif message["type"] == "http.response.body":
                    sent += len(message.get("body", b""))
                await send(message)

            try:
                await app(scope, receive, counting_send)
            finally:
                client = scope.get("client")
                address = client_address(
                    client[0] if client else None, scope["headers"], trusted_proxies, proxy_header
                )
                log.log(
                    logging.WARNING if status >= 500 else logging.INFO,
                    "%s %s %d",
                    scope["method"],
                    route,
                    status,
                    extra={
                        "event": "http_request",
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "durationMs": round((time.perf_counter() - started) * 1000, 3),
                        "clientIp": str(address) if address is not None else None,
                        "bytes": sent,
                    },
                )

        return middleware

    return factory
