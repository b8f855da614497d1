"""Builds the mapping store and admission gate for the settings, and runs their upkeep.

Upkeep, with Redis: the copy of the ban list (for deciding while Redis is down) is
refreshed every few seconds, and records deferred to the outbox are written back
once Redis answers again. Without Redis everything lives in this process.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from token_service.admission.gate import Gate, MemoryGate, OnMappingError, RedisGate
from token_service.config import Settings
from token_service.infra.background import Spawn, cancel_all, native_spawner
from token_service.infra.lane import RedisLane
from token_service.infra.redis import RedisClient
from token_service.ivs.budget import IvsCallBudget
from token_service.mapping.disconnects import (
    DisconnectWork,
    MemoryDisconnectWork,
    RedisDisconnectWork,
)
from token_service.mapping.store import MappingStore, MemoryMappingStore, RedisMappingStore
from token_service.observability.metrics import Children, Metrics
from token_service.observability.tracing import current_ids

log = logging.getLogger(__name__)

#: How often the ban copy is refreshed and the outbox flushed.
UPKEEP_SECONDS = 2.0


class IssuanceMetrics:
    """`tokens.desk.IssuanceHooks` onto the Prometheus metrics."""

    def __init__(self, metrics: Metrics) -> None:
        # Called several times per token: label children looked up once (see Children).
        self._decisions = Children(metrics.rate_limit_decisions)
        self._seconds = Children(metrics.issue_seconds)
        self._issued = Children(metrics.tokens_issued)
        self._outcomes = Children(metrics.issue_outcomes)
        self._writes = Children(metrics.mapping_writes)

    def limit_decided(self, limit: str, allowed: bool) -> None:
        self._decisions(limit, "allowed" if allowed else "denied").inc()

    def issued(self, signer: str, seconds: float) -> None:
        ids = current_ids()
        if ids is None:
            self._seconds(signer).observe(seconds)
        else:
            # With tracing on, the bucket remembers this trace: a slow bucket's exemplar
            # leads to a slow request's trace (OpenMetrics scrapes, one worker).
            self._seconds(signer).observe(seconds, {"trace_id": ids[0]})
        self._issued(signer).inc()
        self._outcomes(signer, "issued").inc()

    def failed(self, signer: str, code: str) -> None:
        self._outcomes(signer, code).inc()

    def recorded(self, deferred: bool) -> None:
        self._writes("deferred" if deferred else "written").inc()


@dataclass
class MappingRuntime:
    store: MappingStore
    gate: Gate
    #: Bans' disconnects still to do (in Redis: shared by the replicas, outliving each).
    disconnects: DisconnectWork
    redis_gate: RedisGate | None = None
    _pending: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _spawn: Spawn | None = field(default=None, repr=False)

    def bans_changed(self) -> None:
        if self.redis_gate is not None:
            # Refresh the copy soon rather than at the next tick.
            (self._spawn or native_spawner(self._pending))(self.redis_gate.refresh_bans())

    async def start(self, spawn: Spawn | None = None) -> None:
        self._spawn = spawn or native_spawner(self._pending)
        if self.redis_gate is not None:
            self._spawn(self._upkeep(self.redis_gate))

    async def close(self) -> None:
        await cancel_all(self._pending)
        if self.redis_gate is not None and self.redis_gate.outbox:
            # Last chance: anything still deferred is in the audit log lines already.
            written = await self.redis_gate.flush_outbox()
            left = len(self.redis_gate.outbox)
            if left:
                log.error(
                    "%d mapping records could not be written to Redis before shutdown "
                    "(they are in the token_issued log lines)",
                    left,
                )
            elif written:
                log.info("wrote %d deferred mapping records at shutdown", written)

    async def _upkeep(self, gate: RedisGate) -> None:
        while True:
            try:
                await gate.refresh_bans()
                if gate.outbox:
                    written = await gate.flush_outbox()
                    if written:
                        log.info("wrote %d deferred mapping records to Redis", written)
            except Exception as exc:
                # The outbox must outlive any one failure: an error escaping here would
                # end the loop, every later write of the outbox with it, and (in the
                # app's task group) the lifespan.
                log.exception("mapping upkeep failed (%s); retrying", exc.__class__.__name__)
            await asyncio.sleep(UPKEEP_SECONDS)


def build_mapping(
    settings: Settings,
    redis_client: RedisClient | None,
    metrics: Metrics,
    lane: RedisLane | None = None,
    budget: IvsCallBudget | None = None,
) -> MappingRuntime:
    retention = settings.mapping.retention_seconds
    if redis_client is None:
        store = MemoryMappingStore(retention_seconds=retention)
        return MappingRuntime(
            store=store, gate=MemoryGate(store), disconnects=MemoryDisconnectWork()
        )
    redis_store = RedisMappingStore(redis_client, retention_seconds=retention, lane=lane)
    gate = RedisGate(
        redis_client,
        redis_store,
        retention_seconds=retention,
        on_limit_error=settings.limits.on_redis_error,
        on_mapping_error=OnMappingError(settings.mapping.on_redis_error),
        timeout_seconds=settings.redis.timeout_seconds,
        on_degraded=lambda fallback: metrics.rate_limit_degraded.labels(fallback).inc(),
        lane=lane,
        budget=budget,
    )
    return MappingRuntime(
        store=redis_store,
        gate=gate,
        disconnects=RedisDisconnectWork(redis_client),
        redis_gate=gate,
    )
