"""Per-request HTTP metrics: count, latency and in-flight requests, by route.

Once Litestar's Prometheus middleware, now kept in the app's own registry and measured
at a fraction of the cost: that middleware built a Request object, two label dicts and
four `labels()` lookups (each validating its values under a lock) per request, a
visible share of a token request's CPU. Here the label children are looked up once per
(method, route, status) and remembered.

Labels are the route template, never the raw path (participant ids in admin paths must
not become label values), the method and, once answered, the status; probes and
`/metrics` itself are not counted. No constant label: which service a series comes from
is the metric prefix and the scrape's target labels (`job`, `instance`). No error
counter either: the 5xx are `requests_total{status_code=~"5.."}` (the recording rules in
deploy/prometheus make the ratio).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX: Final = "token_service_http"
LABELS: Final = ("method", "path", "status_code")
#: A request in progress has no status yet.
IN_PROGRESS_LABELS: Final = ("method", "path")
#: Not counted: the probes and the scrape, which would drown the requests that matter.
UNCOUNTED_PATHS: Final = frozenset({"/metrics", "/healthz", "/readyz"})


class HttpMetrics:
    """The three HTTP series, with their label children memoized (label sets are few:
    routes x methods x statuses)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            f"{PREFIX}_requests", "Requests answered", LABELS, registry=registry
        )
        self.duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Request duration, in seconds",
            LABELS,
            registry=registry,
        )
        self.in_progress = Gauge(
            f"{PREFIX}_requests_in_progress",
            "Requests being answered now",
            IN_PROGRESS_LABELS,
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._gauges: dict[tuple[str, str], Gauge] = {}
        self._finished: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def started(self, method: str, path: str) -> Gauge:
        key = (method, path)
        gauge = self._gauges.get(key)
        if gauge is None:
            gauge = self.in_progress.labels(method, path)
            self._gauges[key] = gauge
        gauge.inc()
        return gauge

    def finished(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (method, path, status)
        children = self._finished.get(key)
        if children is None:
            values = (method, path, str(status))
            children = (self.requests.labels(*values), self.duration.labels(*values))
            self._finished[key] = children
        children[0].inc()
        children[1].observe(seconds)


def http_metrics_middleware(metrics: HttpMetrics) -> Callable[[ASGIApp], ASGIApp]:
    """A Litestar middleware factory (app -> ASGI app) recording `metrics`."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            # Routing has run: Litestar applies middleware per route, so the template is known.
            path = scope.get("path_template", "")
            if scope["type"] != ScopeType.HTTP or path in UNCOUNTED_PATHS:
                await app(scope, receive, send)
                return
            method = scope["method"]
            started = time.perf_counter()
            status = 500  # what the client gets when the app raises before responding
            ended = 0.0

            async def measured_send(message: Message) -> None:
                nonlocal status, ended
                if message["type"] == "http.response.start":
                    status = message["status"]
                elif message["type"] == "http.response.body" and not message.get("more_body"):
                    ended = time.perf_counter()
                await send(message)

            gauge = metrics.started(method, path)
            try:
                await app(scope, receive, measured_send)
            finally:
                gauge.dec()
                metrics.finished(method, path, status, (ended or time.perf_counter()) - started)

        return middleware

    return factory
