"""Prometheus metrics: what was issued, what was refused and why, and how long it took.

Each app owns its registry (several apps may live in one test process), the HTTP request
metrics (`http/metrics.py`) included, grouped by route template so participant ids never
become label values; the default registry adds the process's own (`process_`, `python_`).
Labels hold only bounded, non-secret values: signer, error code, IVS operation. Names
follow Prometheus' naming practice: the unit (`_seconds`) in the name, `_total` on every
counter (prometheus_client appends it), no `_created` series.

With several worker processes (`PROMETHEUS_MULTIPROC_DIR` set, see `cli/serve.py`),
values live in files shared by the workers and a scrape of any worker sums them all;
scrape-time collectors (`add_collector`, e.g. the key gauges) answer from the worker
that serves the scrape.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Generic, TypeVar

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

# Local signing is sub-millisecond; IVS calls take tens of milliseconds.
_ISSUE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    """`metric.labels(*values)`, remembered per label values.

    prometheus_client validates the values and takes a lock on every `labels()` call;
    on the token path that was several calls per request. Label values here come from
    small fixed sets (signers, limits, outcomes, problem codes), so the memo stays small.
    """

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    def __init__(self) -> None:
        # No `<name>_created` series (a creation timestamp per counter and histogram
        # child, one more series for each, which no rule or dashboard reads). It is a
        # process-wide switch of prometheus_client, thrown here where the service's
        # registry is made, not on import. The multiprocess collector (several workers)
        # never writes them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.tokens_issued = Counter(
            "token_service_tokens_issued",
            "Participant tokens handed out",
            ["signer"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "token_service_request_errors",
            "Requests answered with a problem, by problem code",
            ["code"],
            registry=self.registry,
        )
        self.rate_limit_decisions = Counter(
            "token_service_rate_limit_decisions",
            "Rate-limit decisions, by limit (user, ip, stage) and outcome",
            ["limit", "outcome"],
            registry=self.registry,
        )
        self.rate_limit_degraded = Counter(
            "token_service_rate_limit_degraded",
            "Requests decided without Redis, by the configured fallback",
            ["fallback"],
            registry=self.registry,
        )
        self.ivs_calls = Counter(
            "token_service_ivs_calls",
            "IVS API attempts, by operation and outcome (ok, throttled, timeout, ...)",
            ["operation", "outcome"],
            registry=self.registry,
        )
        # One family for the three budgets (CreateParticipantToken, GetStage,
        # DisconnectParticipant), the IVS operation a label: summed over it, every budget
        # answer, as Prometheus' naming practice asks of a family's labels.
        self.ivs_budget_decisions = Counter(
            "token_service_ivs_budget_decisions",
            "IVS call budget answers, by IVS operation: immediate, waited (for a slot), refused",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.ivs_budget_wait_seconds = Histogram(
            "token_service_ivs_budget_wait_seconds",
            "Time waited for an IVS call budget slot, by IVS operation",
            ["operation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )
        self.ban_disconnects = Counter(
            "token_service_ban_disconnects",
            "Bans' disconnects done by this replica, by outcome: disconnected, not_connected, "
            "failed, cancelled (the ban lifted or ended first), retried (given back to try "
            "again)",
            ["outcome"],
            registry=self.registry,
        )
        self.ban_disconnects_pending = Gauge(
            "token_service_ban_disconnects_pending",
            "Bans' disconnects still queued (every replica's), as this replica last saw them",
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )
        self.ivs_budget_degraded = Counter(
            "token_service_ivs_budget_degraded",
            "Budget decisions made without Redis, by the configured fallback (local, deny)",
            ["fallback"],
            registry=self.registry,
        )
        self.issue_seconds = Histogram(
            "token_service_issue_duration_seconds",
            "Time from an authenticated request to a signed or IVS-issued token",
            ["signer"],
            buckets=_ISSUE_BUCKETS,
            registry=self.registry,
        )

        self.issue_outcomes = Counter(
            "token_service_issue_outcomes",
            "Issuing after admission, by signer and outcome: issued, or the failure's problem code",
            ["signer", "outcome"],
            registry=self.registry,
        )
        self.mapping_writes = Counter(
            "token_service_mapping_writes",
            "Participant mapping records of issued tokens: written, or deferred to the outbox",
            ["outcome"],
            registry=self.registry,
        )
        self.readiness = Gauge(
            "token_service_readiness",
            "Readiness checks as of the latest /readyz: 1 for the status each check has "
            "(ok, degraded, failed), 0 for the others",
            ["check", "status"],
            # With several workers: the latest probe's answer, whichever worker gave it.
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )
        #: Every refused request counts here (a 429 flood too): children memoized.
        self.refusals_by_code = Children(self.refusals)
        self._collectors: list[Collector] = []

    def add_collector(self, collector: Collector) -> None:
        """Values computed at scrape time (gauges read from live state)."""
        self._collectors.append(collector)
        self.registry.register(collector)

    def render(self, openmetrics: bool = False) -> bytes:
        """The exposition: the classic text format, or OpenMetrics (which alone carries
        exemplars) when the scraper asks for it."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            for collector in self._collectors:
                registry.register(collector)
            return _openmetrics(registry) if openmetrics else generate_latest(registry)
        if openmetrics:
            # One document, one `# EOF`: both registries' families, through one collector.
            return _openmetrics(_Both(REGISTRY, self.registry))
        return generate_latest(REGISTRY) + generate_latest(self.registry)


def _openmetrics(registry: CollectorRegistry | _Both) -> bytes:
    document: bytes = generate_openmetrics(registry)  # type: ignore[no-untyped-call]
    return document


class _Both:
    """Two registries read as one (OpenMetrics allows a single `# EOF`)."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self._registries = registries

    def collect(self) -> Iterator[Metric]:
        for registry in self._registries:
            yield from registry.collect()
