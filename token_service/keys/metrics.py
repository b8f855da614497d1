"""Signing-key gauges, read from the key ring at scrape time.

Computed when Prometheus scrapes (a custom collector), not stored: a key's age keeps
growing between events, and in multi-worker mode each scrape shows the serving
worker's view of the ring, which every worker refreshes from the shared store.
Labels are the key's name and status: at most three keys exist per region, and a
name says nothing secret (never the key material or fingerprint).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from token_service.keys import KeyStatus, SigningKey
from token_service.keys.ring import ReconcileTally


class KeySource(Protocol):
    def list_keys(self) -> list[SigningKey]: ...

    def active(self) -> SigningKey | None: ...

    def missing_at_ivs(self) -> bool: ...

    @property
    def reconciled(self) -> ReconcileTally: ...


def _now() -> datetime:
    return datetime.now(UTC)


class KeyRingCollector(Collector):
    def __init__(self, ring: KeySource, clock: Callable[[], datetime] = _now) -> None:
        self._ring = ring
        self._clock = clock

    def describe(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        # Without samples: registering must not read the ring.
        return [*self._families(), *self._reconciliation(), self._missing()]

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._families(self._ring.list_keys(), self._ring.active(), self._clock())
        yield from self._reconciliation(self._ring.reconciled)
        yield self._missing(self._ring.missing_at_ivs())

    @staticmethod
    def _missing(missing: bool | None = None) -> GaugeMetricFamily:
        # Its own gauge: such a key still counts as active in `token_service_signing_keys`
        # (the ring holds it), and only the absent `_active_seconds` would tell otherwise.
        family = GaugeMetricFamily(
            "token_service_signing_key_missing_at_ivs",
            "1 when IVS no longer holds the public key this replica would sign with (deleted "
            "behind the service's back: nothing is signed with it until a rotation), else 0",
        )
        if missing is not None:
            family.add_metric([], 1.0 if missing else 0.0)
        return family

    @staticmethod
    def _reconciliation(
        tally: ReconcileTally | None = None,
    ) -> list[GaugeMetricFamily | CounterMetricFamily]:
        deleted = CounterMetricFamily(
            "token_service_signing_key_orphans_deleted",
            "Public keys this service imported half-way (never recorded), deleted at IVS",
        )
        unknown = GaugeMetricFamily(
            "token_service_ivs_unknown_public_keys",
            "Public keys at IVS this service did not import or does not hold yet; they "
            "count against IVS's 3 per region (last reconciliation)",
        )
        if tally is not None:
            deleted.add_metric([], tally.orphans_deleted)
            unknown.add_metric([], tally.unknown_at_ivs)
        return [deleted, unknown]

    @staticmethod
    def _families(
        keys: Sequence[SigningKey] = (),
        signing: SigningKey | None = None,
        now: datetime | None = None,
    ) -> list[GaugeMetricFamily]:
        by_status = GaugeMetricFamily(
            "token_service_signing_keys",
            "Signing keys in the ring, by status (alert when active is 0)",
            labels=["status"],
        )
        age = GaugeMetricFamily(
            "token_service_signing_key_age_seconds",
            "Seconds since each signing key was created, by key name and status",
            labels=["key", "status"],
        )
        active_for = GaugeMetricFamily(
            "token_service_signing_key_active_seconds",
            "Seconds since the key this process signs with was activated (absent without one)",
            labels=["key"],
        )
        safe_at = GaugeMetricFamily(
            "token_service_signing_key_safe_to_delete_timestamp_seconds",
            "When every token a retiring key may have signed has expired (Unix time)",
            labels=["key"],
        )
        if now is None:
            return [by_status, age, active_for, safe_at]
        for status in KeyStatus:
            by_status.add_metric([status.value], sum(1 for k in keys if k.status is status))
        for key in keys:
            age.add_metric([key.name, key.status.value], (now - key.created_at).total_seconds())
            if key.status is KeyStatus.RETIRING and key.safe_to_delete_at is not None:
                safe_at.add_metric([key.name], key.safe_to_delete_at.timestamp())
        if signing is not None:
            since = signing.activated_at or signing.created_at
            active_for.add_metric([signing.name], (now - since).total_seconds())
        return [by_status, age, active_for, safe_at]
