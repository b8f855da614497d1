"""The admin routes' protection: the failure throttle of admin authentications (per client
IP, in Redis when configured so replicas share it), the counter of refused requests, and
which operational routes are for admins only."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter

from token_service.admission.failures import (
    FailureThrottle,
    MemoryFailureThrottle,
    RedisFailureThrottle,
)
from token_service.config import Settings
from token_service.http.guards import ADMIN_AUTH_LIMIT
from token_service.http.listeners import OpsRoute
from token_service.infra.redis import RedisClient
from token_service.observability.metrics import Metrics


def build_admin_throttle(
    settings: Settings, redis_client: RedisClient | None, metrics: Metrics
) -> FailureThrottle:
    rate = settings.limits.admin_auth_failures
    if redis_client is None:
        return MemoryFailureThrottle(ADMIN_AUTH_LIMIT, rate)
    degraded = metrics.rate_limit_degraded.labels("local")
    return RedisFailureThrottle(
        redis_client,
        ADMIN_AUTH_LIMIT,
        rate,
        timeout_seconds=settings.redis.timeout_seconds,
        on_degraded=degraded.inc,
    )


def admin_refusal_counter(metrics: Metrics) -> Callable[[str], None]:
    """`token_service_admin_auth_failures_total{reason}`: refused admin requests, by
    reason: `missing` or `invalid` credentials, or `throttled` (the IP is locked out)."""
    counter = Counter(
        "token_service_admin_auth_failures",
        "Refused admin requests: missing or invalid credentials, or throttled client IPs",
        ["reason"],
        registry=metrics.registry,
    )
    for reason in ("missing", "invalid", "throttled"):
        counter.labels(reason)  # every series exists from the start, at 0, for alerts
    return lambda reason: counter.labels(reason).inc()


def private_ops_routes(settings: Settings) -> frozenset[OpsRoute]:
    """The operational routes the service port does not serve to anyone but an admin."""
    public = {
        OpsRoute.METRICS: settings.server.public_metrics,
        OpsRoute.SCHEMA: settings.server.schema_public,
    }
    return frozenset(route for route, is_public in public.items() if not is_public)
