"""Scheduled key rotation (TOKEN_SERVICE_KEY_ROTATION_INTERVAL): import, promote, delete.

Every replica runs the loop; each sleeps until something in the shared lifecycle is
due (the next key's import, its promotion, a retiring key's safe-delete time), then
tries the key lock without waiting. The replica that gets it acts (`KeyRing.
scheduled_step`), decides from the state read under the lock, and its change reaches
the others at once; those that did not get the lock find nothing due afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from token_service.errors import DomainError
from token_service.keys.admin import audit, scheduler_actor
from token_service.keys.model import KeyStatus
from token_service.keys.ring import KeyRing

log = logging.getLogger(__name__)

#: Re-read the schedule at least this often (a change by another replica moves it).
MAX_SLEEP_SECONDS = 60.0
#: The longest pause after a pass that found nothing it could do yet.
MAX_BACKOFF_SECONDS = 60.0


def default_lead(interval: timedelta) -> timedelta:
    """How long before promotion the next key is imported: a tenth of the interval, at most
    a day, so a mounted store has time to reach every replica."""
    return min(interval / 10, timedelta(days=1))


class RotationScheduler:
    def __init__(
        self,
        ring: KeyRing,
        interval: timedelta,
        *,
        lead: timedelta | None = None,
        min_sleep_seconds: float = 1.0,
    ) -> None:
        self._ring = ring
        self._interval = interval
        self._lead = default_lead(interval) if lead is None else lead
        self._min_sleep = min_sleep_seconds
        self._actor = scheduler_actor()
        lifetime = ring.max_token_lifetime + ring.delete_margin
        if interval < lifetime:
            log.warning(
                "TOKEN_SERVICE_KEY_ROTATION_INTERVAL (%s) is shorter than the longest token "
                "lifetime plus margin (%s): retiring keys will pile up to IVS's three and "
                "rotation will wait for them",
                interval,
                lifetime,
            )

    def seconds_until_due(self) -> float:
        """From this replica's view of the ring: when the next scheduled action is due."""
        now = self._ring.now()
        moments: list[datetime] = []
        keys = self._ring.list_keys()
        for key in keys:
            if key.status is KeyStatus.ACTIVE:
                due = (key.activated_at or key.created_at) + self._interval
                has_next = any(k.status is KeyStatus.NEXT for k in keys)
                moments.append(due if has_next else due - self._lead)
            elif key.status is KeyStatus.RETIRING and key.safe_to_delete_at is not None:
                moments.append(key.safe_to_delete_at)
        if not moments:
            return MAX_SLEEP_SECONDS
        return (min(moments) - now).total_seconds()

    async def run(self) -> None:
        backoff = self._min_sleep
        while True:
            wait = self.seconds_until_due()
            if wait > 0:
                await asyncio.sleep(min(max(wait, self._min_sleep), MAX_SLEEP_SECONDS))
                continue
            try:
                actions = await self._ring.scheduled_step(self._interval, self._lead)
            except DomainError as exc:
                log.warning("scheduled key rotation failed: %s", exc.detail)
                actions = []
            for action, key in actions:
                audit(self._actor, f"scheduled_{action}", "ok", key=key.name, keyArn=key.arn)
            if actions:
                backoff = self._min_sleep
                continue
            # Nothing could be done yet (another replica holds the lock, or a retiring
            # key's counted tokens outlive its planned safe time): back off.
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
