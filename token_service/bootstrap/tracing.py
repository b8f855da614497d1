"""Tracing, wired: the SDK's tracer provider from `TracingSettings`, the server span
middleware, and the botocore instrumentation, started and stopped with the app.

The SDK, exporters and instrumentations are imported only when tracing is on
(`build_tracing` returns None first): a service without `OTEL_TRACES_EXPORTER` builds no
provider, patches nothing and adds no middleware.

- The server span: Litestar's OpenTelemetry middleware (the maintained ASGI
  instrumentation under it), W3C `traceparent` honoured; no spans per ASGI send or
  receive. Litestar runs it around the router (so a 404 has its span too), before the
  route is known: it is named by the method alone, and renamed `METHOD /route/{template}`
  once routing has found one (never the raw path).
- Each IVS call: the botocore instrumentation (a client span per API call, with its
  operation, region and request id), a global patch made at start-up and undone at stop.
- The steps in between open their own spans through `observability.tracing.span`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from token_service import package_version
from token_service.observability.tracing import TraceExporter, TraceSampler, use_tracer

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Litestar
    from litestar.middleware.base import DefineMiddleware
    from litestar.types import ASGIApp, Receive, Scope, Send
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler

    from token_service.config.settings import TracingSettings

INSTRUMENTATION_NAME = "token_service"


@dataclass
class Tracing:
    """The process's tracing while the app runs: its provider and its server middleware."""

    provider: TracerProvider
    #: The server span's middleware, then the one naming it by route.
    middleware: list[DefineMiddleware | Callable[[ASGIApp], ASGIApp]]
    #: Built here (shut down at stop) or given by a test (left to it).
    owned: bool

    def start(self) -> None:
        from opentelemetry import trace
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

        tracer = self.provider.get_tracer(INSTRUMENTATION_NAME, package_version())

        def ids() -> tuple[str, str] | None:
            context = trace.get_current_span().get_span_context()
            if not context.is_valid or not context.trace_flags.sampled:
                return None
            return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)

        use_tracer(tracer, ids)
        BotocoreInstrumentor().instrument(tracer_provider=self.provider)  # type: ignore[no-untyped-call]

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """Tracing on for the app's life; put first among its lifespans (first in, last
        out), so the clients' start and close happen while spans are still exported."""
        self.start()
        try:
            yield
        finally:
            self.stop()

    def stop(self) -> None:
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

        BotocoreInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
        use_tracer(None)
        if self.owned:
            self.provider.shutdown()  # flushes the spans still queued
        else:
            self.provider.force_flush()


def build_tracing(
    settings: TracingSettings, provider: TracerProvider | None = None
) -> Tracing | None:
    """Tracing as `settings` say, or with a test's `provider`; None when it is off."""
    if provider is None and not settings.enabled:
        return None
    from litestar.plugins.opentelemetry import OpenTelemetryConfig

    owned = provider is None
    if provider is None:
        provider = _provider(settings)
    config = OpenTelemetryConfig(
        tracer_provider=provider,
        scope_span_details_extractor=_span_details,
        # One span per request: the ASGI instrumentation would add one per send/receive.
        exclude_spans=["receive", "send"],
    )
    return Tracing(provider=provider, middleware=[config.middleware, _name_by_route], owned=owned)


def _span_details(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The server span's first name: the method, never the path (which may carry ids)."""
    return str(scope.get("method") or "HTTP"), {}


def _name_by_route(app: ASGIApp) -> ASGIApp:
    """Names the server span by its route once routing has found one (Litestar applies
    this middleware per route, after routing)."""
    from opentelemetry import trace

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        route = scope.get("path_template")
        span = trace.get_current_span()
        if route and span.is_recording():
            span.update_name(f"{scope.get('method', 'HTTP')} {route}")
            span.set_attribute("http.route", route)
        await app(scope, receive, send)

    return middleware


def _provider(settings: TracingSettings) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create(
        {"service.name": settings.service_name, "service.version": package_version()}
    )
    provider = TracerProvider(resource=resource, sampler=_sampler(settings))
    for exporter in settings.exporters:
        if exporter is TraceExporter.OTLP:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))
            )
        elif exporter is TraceExporter.CONSOLE:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


def _sampler(settings: TracingSettings) -> Sampler:
    from opentelemetry.sdk.trace import sampling

    ratio = sampling.TraceIdRatioBased(settings.sampler_ratio)
    return {
        TraceSampler.ALWAYS_ON: sampling.ALWAYS_ON,
        TraceSampler.ALWAYS_OFF: sampling.ALWAYS_OFF,
        TraceSampler.TRACE_ID_RATIO: ratio,
        TraceSampler.PARENT_BASED_ALWAYS_ON: sampling.ParentBased(sampling.ALWAYS_ON),
        TraceSampler.PARENT_BASED_ALWAYS_OFF: sampling.ParentBased(sampling.ALWAYS_OFF),
        TraceSampler.PARENT_BASED_TRACE_ID_RATIO: sampling.ParentBased(ratio),
    }[settings.sampler]
