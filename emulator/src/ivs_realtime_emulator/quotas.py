"""The documented request-rate quotas of IVS real-time, enforced per region.

A precise sliding one-second window: a call is accepted only if fewer than the
limit were accepted in the second before it, so "at most N calls in any one
second" holds for every window, not only for aligned ones. Throttled calls do
not count against the quota.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

#: Requests per second per account and region. From the IVS real-time "Service
#: Quotas" page; none of these is adjustable. Operations absent here are unlimited.
RATE_LIMITS: Mapping[str, int] = {
    "CreateParticipantToken": 50,
    # Stage operations: 5 TPS each.
    "CreateStage": 5,
    "GetStage": 5,
    "ListStages": 5,
    "UpdateStage": 5,
    "DeleteStage": 5,
    "ListParticipants": 5,
    "GetParticipant": 5,
    "DisconnectParticipant": 5,
    "ListStageSessions": 5,
    "GetStageSession": 5,
    # Public-key operations: 3 TPS each.
    "ImportPublicKey": 3,
    "GetPublicKey": 3,
    "ListPublicKeys": 3,
    "DeletePublicKey": 3,
    # Composition, MediaEncoder and StorageConfiguration operations: 5 TPS each.
    "StartComposition": 5,
    "GetComposition": 5,
    "ListCompositions": 5,
    "StopComposition": 5,
    "CreateEncoderConfiguration": 5,
    "GetEncoderConfiguration": 5,
    "ListEncoderConfigurations": 5,
    "DeleteEncoderConfiguration": 5,
    "CreateStorageConfiguration": 5,
    "GetStorageConfiguration": 5,
    "ListStorageConfigurations": 5,
    "DeleteStorageConfiguration": 5,
    # Listed with the stage operations: 5 TPS.
    "ListParticipantEvents": 5,
    # IngestConfiguration operations: 5 TPS each.
    "CreateIngestConfiguration": 5,
    "GetIngestConfiguration": 5,
    "ListIngestConfigurations": 5,
    "UpdateIngestConfiguration": 5,
    "DeleteIngestConfiguration": 5,
    # Tags: 10 TPS each.
    "TagResource": 10,
    "UntagResource": 10,
    "ListTagsForResource": 10,
}

WINDOW_SECONDS = 1.0


class SlidingWindow:
    """Admits at most `limit` events in any `window`-second interval."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._accepted: deque[float] = deque()

    def try_acquire(self, now: float) -> bool:
        while self._accepted and self._accepted[0] <= now - self.window:
            self._accepted.popleft()
        if len(self._accepted) >= self.limit:
            return False
        self._accepted.append(now)
        return True


class RateLimiter:
    """One sliding window per (region, operation) of every limited operation."""

    def __init__(self, enabled: bool, limits: Mapping[str, int] = RATE_LIMITS) -> None:
        self.enabled = enabled
        self._limits = dict(limits)
        self._windows: dict[tuple[str, str], SlidingWindow] = {}

    def allow(self, region: str, operation: str, now: float) -> bool:
        limit = self._limits.get(operation)
        if not self.enabled or limit is None:
            return True
        window = self._windows.get((region, operation))
        if window is None:
            window = self._windows[(region, operation)] = SlidingWindow(limit)
        return window.try_acquire(now)

    def limit_of(self, operation: str) -> int | None:
        return self._limits.get(operation)
