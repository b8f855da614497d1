"""The key ring's background work in a serving process: follow changes, count, schedule.

- Changes made by another replica arrive as a Redis pub/sub message and the ring
  reloads at once; a quiet minute triggers a check of the generation counter anyway,
  and after a lost subscription the ring reloads before listening again.
- The store is polled every TOKEN_SERVICE_KEY_REFRESH_SECONDS for changes written
  by an operator (a directory's files, a Secret mount's update); Secrets Manager is
  polled only without Redis or while waiting for a key's private half.
- Token counts per key are written to Redis every minute, and at once when an
  operator's delete or revoke asks every replica to.
- Scheduled rotation, when configured.

Nothing here touches Redis on the request path or between events, so an issued
token still costs exactly one Redis round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from token_service.errors import DomainError
from token_service.infra.background import Spawn, cancel_all, native_spawner
from token_service.keys.ring import KeyRing
from token_service.keys.scheduler import RotationScheduler
from token_service.keys.state import CHANNEL
from token_service.keys.usage import FLUSH_INTERVAL_SECONDS

log = logging.getLogger(__name__)

#: Without any message for this long, compare the generation counter anyway.
QUIET_CHECK_SECONDS = 60.0
_RECONNECT_SECONDS = 1.0
CLOSE_TIMEOUT_SECONDS = 2.0


#: The start-up reconciliation's bound; the periodic one retries what it could not do.
RECONCILE_AT_START_SECONDS = 3.0


class KeyRuntime:
    def __init__(
        self,
        ring: KeyRing,
        *,
        refresh_seconds: float = 2.0,
        ivs_check_seconds: float | None = None,
        poll_store: bool = True,
        rotation_interval: timedelta | None = None,
        flush_seconds: float = FLUSH_INTERVAL_SECONDS,
        reconcile_seconds: float | None = None,
    ) -> None:
        self.ring = ring
        self._reconcile_seconds = reconcile_seconds
        self._refresh_seconds = refresh_seconds
        self._ivs_check_seconds = ivs_check_seconds
        self._poll_store = poll_store
        self._flush_seconds = flush_seconds
        self._scheduler = (
            RotationScheduler(ring, rotation_interval, min_sleep_seconds=refresh_seconds)
            if rotation_interval is not None
            else None
        )
        self._pubsub: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._spawner: Spawn = native_spawner(self._tasks)

    async def start(self, spawn: Spawn | None = None) -> None:
        self._spawner = spawn or native_spawner(self._tasks)
        shared = self.ring.shared
        if shared is not None:
            try:
                # Subscribe before the first load: a change in between is then not missed.
                await self._subscribe()
                await self.ring.refresh(force=True)
            except Exception as exc:  # noqa: BLE001 - Redis down at start must not stop serving
                log.warning(
                    "shared key state unavailable at start (%s); signing with %s until Redis "
                    "answers",
                    type(exc).__name__,
                    self.ring.store.description,
                )
            self._spawn(self._follow_events())
            self._spawn(self._flush_usage())
        self._spawn(self._follow_store())
        if self._ivs_check_seconds is not None:
            self._spawn(self._watch_registration(self._ivs_check_seconds))
        if self._reconcile_seconds is not None:
            # Once before serving (bounded: IVS down must not hold up the start), so a
            # slot an orphan holds is free before the first rotation; then periodically.
            await self._reconcile_once(bound=RECONCILE_AT_START_SECONDS)
            self._spawn(self._reconcile(self._reconcile_seconds))
        if self._scheduler is not None:
            self._spawn(self._scheduler.run())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self._spawner(coroutine)

    async def close(self) -> None:
        # Loops spawned into the app's task group have ended already; our own, not yet.
        await cancel_all(self._tasks)
        await self._unsubscribe()
        # Bounded: a Redis that does not answer must not hold up shutdown.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await self.ring.usage.flush()

    async def _subscribe(self) -> None:
        shared = self.ring.shared
        assert shared is not None  # noqa: S101 - only called with shared state
        pubsub = shared.client.pubsub()
        await pubsub.subscribe(CHANNEL)
        self._pubsub = pubsub

    async def _unsubscribe(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                    await pubsub.aclose()

    async def _follow_events(self) -> None:
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    await self.ring.refresh(force=True)
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=QUIET_CHECK_SECONDS
                )
                if message is None:
                    await self.ring.refresh()
                    continue
                data = message.get("data")
                text = data.decode() if isinstance(data, bytes) else str(data)
                if text == "flush":
                    await self.ring.usage.flush()
                elif text.startswith("changed"):
                    await self.ring.refresh()
            except asyncio.CancelledError:
                raise
            except DomainError as exc:
                # A bad key or state (e.g. two active keys): keep the last good ring and
                # the subscription; the next change is another chance.
                log.error("reloading the signing keys failed: %s", exc.detail)  # noqa: TRY400 - the detail is the story
            except Exception as exc:  # noqa: BLE001 - keep following; the last ring keeps signing
                log.warning("following key changes failed (%s); retrying", type(exc).__name__)
                await self._unsubscribe()
                await asyncio.sleep(_RECONNECT_SECONDS)

    async def _follow_store(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            if not self._poll_store and not self.ring.waiting_for_material():
                continue
            try:
                await self.ring.refresh_if_store_changed()
            except Exception as exc:  # noqa: BLE001 - keep the last good ring
                log.warning("reloading the signing keys failed: %s", exc)

    async def _watch_registration(self, every: float) -> None:
        """Stop signing with a key IVS no longer has (deleted behind our back)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.ring.check_active_registered()
            except Exception as exc:  # noqa: BLE001 - the next check is another chance
                log.warning("checking the signing key at IVS failed (%s)", type(exc).__name__)

    async def _reconcile(self, every: float) -> None:
        """Every `every` seconds: orphans of failed imports deleted (see `KeyRing.reconcile`)."""
        while True:
            await asyncio.sleep(every)
            await self._reconcile_once()

    async def _reconcile_once(self, bound: float | None = None) -> None:
        try:
            async with asyncio.timeout(bound):
                await self.ring.reconcile()
        except Exception as exc:  # noqa: BLE001 - the next pass is another chance
            log.warning("reconciling the keys at IVS failed (%s)", type(exc).__name__)

    async def _flush_usage(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.ring.usage.flush()
