"""Helpers for key ring tests: a settable clock and a ring wired to the emulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from token_service.ivs.client import Ivs
from token_service.keys import KeyFiles, KeyRing
from token_service.keys.imports import RedisImportNotes
from token_service.keys.locks import MemoryLock, RedisLock
from token_service.keys.state import RedisKeyState
from token_service.keys.usage import MemoryKeyUsage, RedisKeyUsage

LIFETIME = timedelta(hours=1)
MARGIN = timedelta(minutes=5)


@dataclass
class Clock:
    # Starts at the real time: Redis expires the usage counts by its own clock.
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_ring(
    ivs_client: Any,
    keys_dir: Path,
    clock: Clock,
    *,
    redis_client: Any = None,
    lifetime: timedelta = LIFETIME,
    read_only: bool = False,
) -> KeyRing:
    ring = KeyRing(
        KeyFiles(keys_dir, read_only=read_only),
        Ivs(ivs_client, workers=2),
        max_token_lifetime=lifetime,
        clock=clock,
        shared=RedisKeyState(redis_client) if redis_client is not None else None,
        lock=RedisLock(redis_client) if redis_client is not None else MemoryLock(),
        usage=RedisKeyUsage(redis_client) if redis_client is not None else MemoryKeyUsage(),
        delete_margin=MARGIN,
        flush_wait_seconds=0.05,
        imports=RedisImportNotes(redis_client) if redis_client is not None else None,
    )
    ring.load()
    return ring


def ivs_arns(ivs_client: Any) -> set[str]:
    return {k["arn"] for k in ivs_client.list_public_keys()["publicKeys"]}
