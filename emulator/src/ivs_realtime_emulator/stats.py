"""What each operation saw: calls, throttles, failures and its busiest second.

`maxPerSecond` is the most calls accepted (not throttled) within any one-second
window, measured over all regions: the number a test compares with a quota.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ivs_realtime_emulator.quotas import WINDOW_SECONDS


@dataclass
class OperationStats:
    calls: int = 0
    throttled: int = 0
    failed: int = 0
    max_per_second: int = 0
    _recent: deque[float] = field(default_factory=deque)

    def accept(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - WINDOW_SECONDS:
            self._recent.popleft()
        self._recent.append(now)
        self.max_per_second = max(self.max_per_second, len(self._recent))


class Stats:
    def __init__(self) -> None:
        self._operations: dict[str, OperationStats] = {}

    def _of(self, operation: str) -> OperationStats:
        stats = self._operations.get(operation)
        if stats is None:
            stats = self._operations[operation] = OperationStats()
        return stats

    def called(self, operation: str) -> None:
        self._of(operation).calls += 1

    def accepted(self, operation: str, now: float) -> None:
        self._of(operation).accept(now)

    def throttled(self, operation: str) -> None:
        self._of(operation).throttled += 1

    def failed(self, operation: str) -> None:
        self._of(operation).failed += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "operations": {
                name: {
                    "calls": stats.calls,
                    "throttled": stats.throttled,
                    "failed": stats.failed,
                    "maxPerSecond": stats.max_per_second,
                }
                for name, stats in sorted(self._operations.items())
            }
        }
