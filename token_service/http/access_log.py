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
from collections.abc import Callable, Iterable, Sequence
from typing import Final, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from token_service.http.client_ip import Network, ProxyHeader, address_text, scope_address
from token_service.observability.tracing import current_ids

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


class AccessLog:
    """Writes one line per HTTP request around the whole app (`ServiceApp`): routed or not
    (a 404 of an unknown path never reaches a route's middleware), failed or answered.

    It runs outside the server span and the request-id middleware, so what they know is
    read off the answer as it passes: the request id from its `X-Request-Id` header, the
    trace ids from the span current when the answer starts.
    """

    def __init__(
        self,
        *,
        probes: ProbeLogging,
        probe_sample_rate: float,
        trusted_proxies: Sequence[Network],
        proxy_header: ProxyHeader,
        dice: Callable[[], float] = random.random,
    ) -> None:
        self._probes = probes
        self._sample_rate = probe_sample_rate
        self._proxies = tuple(trusted_proxies)
        self._header = proxy_header
        self._dice = dice

    def _logged(self, path: str) -> bool:
        if path not in PROBE_PATHS:
            return True
        if self._probes is ProbeLogging.SAMPLED:
            return self._dice() < self._sample_rate
        return self._probes is ProbeLogging.ON

    async def __call__(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        if scope["type"] != ScopeType.HTTP or not self._logged(scope["path"]):
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering
        sent = 0
        request_id: str | None = None
        ids: tuple[str, str] | None = None

        async def counting_send(message: Message) -> None:
            nonlocal status, sent, request_id, ids
            if message["type"] == "http.response.start":
                status = message["status"]
                request_id = _request_id(message)
                ids = current_ids()
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await app(scope, receive, counting_send)
        finally:
            self._write(
                scope,
                status=status,
                seconds=time.perf_counter() - started,
                sent=sent,
                request_id=request_id,
                ids=ids,
            )

    def _write(
        self,
        scope: HTTPScope,
        *,
        status: int,
        seconds: float,
        sent: int,
        request_id: str | None,
        ids: tuple[str, str] | None,
    ) -> None:
        level = logging.WARNING if status >= 500 else logging.INFO
        if not log.isEnabledFor(level):
            # Nothing to write at this level: not even the fields are built.
            return
        # Routing has run by now: the template, or none for a path no route matched.
        route = scope.get("path_template") or UNMATCHED
        address = scope_address(scope, self._proxies, self._header)
        fields: dict[str, object] = {
            "event": "http_request",
            "method": scope["method"],
            "route": route,
            "status": status,
            "durationMs": round(seconds * 1000, 3),
            "clientIp": address_text(address) if address is not None else None,
            "bytes": sent,
        }
        if request_id is not None:
            fields["requestId"] = request_id
        if ids is not None:
            fields["traceId"], fields["spanId"] = ids
        log.log(
            level,
            "%s %s %d",
            scope["method"],
            route,
            status,
            extra=fields,
        )


def _request_id(message: Message) -> str | None:
    headers = cast("Iterable[tuple[bytes, bytes]]", message.get("headers", ()))
    for name, value in headers:
        if name.lower() == b"x-request-id":
            return bytes(value).decode("latin-1")
    return None
