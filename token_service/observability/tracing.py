"""Spans around the steps of a request when tracing is on; nothing at all when it is off.

The steps (authentication, a JWKS fetch, the policy, the admission script, the mapping
record, the signature, an IVS call) open their span with `span(name)`. With tracing off,
the default, that is one global read returning a shared no-op context manager, and the
app has no OpenTelemetry middleware (Litestar imports the API when it is installed;
nothing of it runs). The composition root turns it on with
`use_tracer(...)` (bootstrap/tracing.py builds the SDK's tracer from the standard
`OTEL_*` settings) and off again when the app stops.

Span names and attributes hold bounded, non-secret values only: never a token, a key,
a header value or a body.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

AttributeValue = str | bool | int | float

#: Entered by every `with span(...)` while tracing is off; nullcontext is reentrant.
_OFF: AbstractContextManager[object] = nullcontext()


class _Tracing:
    """The process's tracer, or None: one object, so turning it on or off is one write."""

    __slots__ = ("ids", "tracer")

    def __init__(self) -> None:
        self.tracer: Tracer | None = None
        #: The current span's (trace id, span id) as hex, or None outside a recorded span.
        self.ids: Callable[[], tuple[str, str] | None] | None = None


_tracing = _Tracing()


def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> AbstractContextManager[object]:
    """A child span of the current one named `name` (a no-op while tracing is off)."""
    tracer = _tracing.tracer
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(name, attributes=attributes)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the span being recorded now, as W3C hex; None when tracing is
    off or no span is recorded (log lines and exemplars carry them when there is one)."""
    ids = _tracing.ids
    return ids() if ids is not None else None


def use_tracer(
    tracer: Tracer | None, ids: Callable[[], tuple[str, str] | None] | None = None
) -> None:
    """Turn tracing on with `tracer` (and `ids`, reading the current span's ids), or off
    with None. The composition root's job only: one app's tracing at a time per process."""
    _tracing.tracer = tracer
    _tracing.ids = ids if tracer is not None else None


def tracing_on() -> bool:
    return _tracing.tracer is not None


class TraceExporter(enum.StrEnum):
    """Where spans go: the values `OTEL_TRACES_EXPORTER` takes (a comma-separated list)."""

    OTLP = "otlp"
    CONSOLE = "console"
    NONE = "none"


class TraceSampler(enum.StrEnum):
    """Which traces are kept: the values `OTEL_TRACES_SAMPLER` takes."""

    ALWAYS_ON = "always_on"
    ALWAYS_OFF = "always_off"
    TRACE_ID_RATIO = "traceidratio"
    PARENT_BASED_ALWAYS_ON = "parentbased_always_on"
    PARENT_BASED_ALWAYS_OFF = "parentbased_always_off"
    PARENT_BASED_TRACE_ID_RATIO = "parentbased_traceidratio"
