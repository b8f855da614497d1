"""Injected faults: added latency, a share of throttles, a share of errors, per operation.

Faults are set per operation name or for `*` (every operation). An operation's
own entry wins over `*` as a whole; entries are never merged, so setting one
field of an operation replaces every fault that operation had.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

#: The key that applies to every operation without an entry of its own.
ALL_OPERATIONS = "*"
#: Latency above this is almost certainly a typo (ms instead of s) and would hang clients.
MAX_LATENCY_MS = 60_000

_FIELDS = {"operation", "latencyMs", "errorRate", "error", "throttleRate"}


class FaultSpecError(ValueError):
    """A fault definition that cannot be applied; the message says which field and why."""


@dataclass(frozen=True)
class FaultSpec:
    """What to do to one operation's requests."""

    latency_ms: int = 0
    error_rate: float = 0.0
    error: str = "InternalServerException"
    throttle_rate: float = 0.0

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        return {
            "latencyMs": values["latency_ms"],
            "errorRate": values["error_rate"],
            "error": values["error"],
            "throttleRate": values["throttle_rate"],
        }


def check_rate(name: str, value: object) -> float:
    """A share of requests: a number from 0 to 1."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultSpecError(f"{name} must be a number from 0 to 1")
    rate = float(value)
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise FaultSpecError(f"{name} must be a number from 0 to 1")
    return rate


def check_latency(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultSpecError("latencyMs must be an integer number of milliseconds")
    if not 0 <= value <= MAX_LATENCY_MS:
        raise FaultSpecError(f"latencyMs must be from 0 to {MAX_LATENCY_MS}")
    return value


def parse_fault_request(
    body: object, operations: Collection[str], errors: Collection[str]
) -> tuple[str, FaultSpec]:
    """Read a `POST /_emulator/faults` body: `(operation, spec)` or FaultSpecError."""
    if not isinstance(body, dict):
        raise FaultSpecError("the body must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise FaultSpecError(f"unknown fields: {', '.join(unknown)}")
    operation = body.get("operation")
    if not isinstance(operation, str):
        raise FaultSpecError("operation is required: an operation name or '*'")
    if operation != ALL_OPERATIONS and operation not in operations:
        raise FaultSpecError(f"operation {operation!r} is not an ivs-realtime operation")
    defaults = FaultSpec()
    error = body.get("error", defaults.error)
    if error not in errors:
        raise FaultSpecError(f"error must be one of: {', '.join(sorted(errors))}")
    spec = FaultSpec(
        latency_ms=check_latency(body.get("latencyMs", defaults.latency_ms)),
        error_rate=check_rate("errorRate", body.get("errorRate", defaults.error_rate)),
        error=str(error),
        throttle_rate=check_rate("throttleRate", body.get("throttleRate", defaults.throttle_rate)),
    )
    return operation, spec


class FaultTable:
    """The faults in force, and the dice that decide whether a request is hit."""

    def __init__(self, initial: Mapping[str, FaultSpec], seed: int | None = None) -> None:
        self._specs: dict[str, FaultSpec] = dict(initial)
        # Not for security: only decides which requests an injected fault hits.
        self._random = random.Random(seed)  # noqa: S311

    def set(self, operation: str, spec: FaultSpec) -> None:
        self._specs[operation] = spec

    def clear(self) -> None:
        self._specs.clear()

    def for_operation(self, operation: str) -> FaultSpec | None:
        return self._specs.get(operation, self._specs.get(ALL_OPERATIONS))

    def hits(self, rate: float) -> bool:
        """True for a share `rate` of calls (never for 0, always for 1)."""
        return rate > 0.0 and self._random.random() < rate

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {operation: spec.to_json() for operation, spec in sorted(self._specs.items())}
