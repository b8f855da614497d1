"""Signing-key gauges computed from the key ring when Prometheus scrapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from token_service.keys import KeyStatus, SigningKey
from token_service.keys.metrics import KeyRingCollector
from token_service.keys.ring import ReconcileTally

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def key(name: str, status: KeyStatus, created_hours_ago: float, **extra: datetime) -> SigningKey:
    return SigningKey(
        name=name,
        arn=f"arn:aws:ivs:us-east-1:123456789012:public-key/{name}",
        fingerprint="fp-" + name,
        status=status,
        created_at=NOW - timedelta(hours=created_hours_ago),
        **extra,
    )


class Ring:
    def __init__(self, keys: list[SigningKey], active: SigningKey | None) -> None:
        self.keys = keys
        self.signing = active
        self.reconciled = ReconcileTally(orphans_deleted=2, unknown_at_ivs=1)
        self.reads = 0
        self.missing = False

    def list_keys(self) -> list[SigningKey]:
        self.reads += 1
        return self.keys

    def active(self) -> SigningKey | None:
        return None if self.missing else self.signing

    def missing_at_ivs(self) -> bool:
        return self.missing


def scrape(ring: Ring) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(KeyRingCollector(ring, clock=lambda: NOW))
    text = generate_latest(registry).decode()
    return {
        f.name: [(dict(s.labels), s.value) for s in f.samples]
        for f in text_string_to_metric_families(text)
    }


ACTIVE = key("k2", KeyStatus.ACTIVE, 2, activated_at=NOW - timedelta(hours=1))
RETIRING = key("k1", KeyStatus.RETIRING, 30, safe_to_delete_at=datetime(2026, 11, 29, tzinfo=UTC))


def test_keys_are_counted_by_status_including_zero() -> None:
    families = scrape(Ring([ACTIVE, RETIRING], ACTIVE))
    counts = {labels["status"]: value for labels, value in families["token_service_signing_keys"]}
    assert counts == {"active": 1.0, "next": 0.0, "retiring": 1.0}


def test_age_is_seconds_since_creation_per_key() -> None:
    families = scrape(Ring([ACTIVE, RETIRING], ACTIVE))
    ages = {
        (labels["key"], labels["status"]): value
        for labels, value in families["token_service_signing_key_age_seconds"]
    }
    assert ages == {("k2", "active"): 7200.0, ("k1", "retiring"): 30 * 3600.0}


def test_active_seconds_counts_from_activation() -> None:
    families = scrape(Ring([ACTIVE], ACTIVE))
    assert families["token_service_signing_key_active_seconds"] == [({"key": "k2"}, 3600.0)]


def test_no_active_key_leaves_the_active_gauge_empty() -> None:
    families = scrape(Ring([RETIRING], None))
    assert families["token_service_signing_key_active_seconds"] == []


def test_retiring_key_reports_when_it_is_safe_to_delete() -> None:
    families = scrape(Ring([RETIRING], None))
    safe = families["token_service_signing_key_safe_to_delete_timestamp_seconds"]
    assert safe == [({"key": "k1"}, datetime(2026, 11, 29, tzinfo=UTC).timestamp())]


def test_registering_does_not_read_the_ring() -> None:
    ring = Ring([ACTIVE], ACTIVE)
    CollectorRegistry(auto_describe=True).register(KeyRingCollector(ring))
    assert ring.reads == 0


def test_reconciliation_reports_orphans_deleted_and_keys_unknown_at_ivs() -> None:
    families = scrape(Ring([ACTIVE], ACTIVE))

    assert families["token_service_signing_key_orphans_deleted"] == [({}, 2.0)]
    assert families["token_service_ivs_unknown_public_keys"] == [({}, 1.0)]


def test_a_signing_key_ivs_holds_is_not_missing() -> None:
    families = scrape(Ring([ACTIVE], ACTIVE))
    assert families["token_service_signing_key_missing_at_ivs"] == [({}, 0.0)]


def test_a_signing_key_ivs_no_longer_holds_is_missing() -> None:
    ring = Ring([ACTIVE], ACTIVE)
    ring.missing = True
    families = scrape(ring)
    assert families["token_service_signing_key_missing_at_ivs"] == [({}, 1.0)]
