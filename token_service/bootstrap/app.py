"""The composition root: `create_app(settings, **overrides)` builds, wires, starts and
closes every adapter. Nothing else in the package constructs a client.

Tests pass their own clients (a boto3 client pointed at the emulator, a Redis
client on a private server, an httpx client) as overrides; production passes none.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi.spec import Components, SecurityScheme
from prometheus_client import Counter

from token_service import package_version
from token_service.auth import (
    AdminTokens,
)
from token_service.bootstrap.admin import (
    admin_refusal_counter,
    build_admin_throttle,
    private_ops_routes,
)
from token_service.bootstrap.keys import build_key_ring, build_key_runtime
from token_service.bootstrap.mapping import IssuanceMetrics as _IssuanceMetrics
from token_service.bootstrap.mapping import MappingRuntime, build_mapping
from token_service.bootstrap.tracing import build_tracing
from token_service.config import Settings
from token_service.http.access_log import AccessLog
from token_service.http.cors import cors_middleware
from token_service.http.disconnects import client_disconnect_middleware
from token_service.http.listeners import listener_guard
from token_service.http.metrics import HttpMetrics, http_metrics_middleware
from token_service.http.openapi import (
    RESPONSE_HEADERS,
    DocumentedOpenAPIConfig,
    StrictStructSchemaPlugin,
)
from token_service.http.options_allow import allow_header_hook
from token_service.http.problems import exception_handlers
from token_service.http.request_id import request_id_middleware
from token_service.http.routes.admin_keys import AdminKeysController
from token_service.http.routes.admin_participants import AdminParticipantsController
from token_service.http.routes.demo import DEMO_STATE_KEY, demo_route_handlers
from token_service.http.routes.exchange import (
    exchange_participant_token,
    set_participant_capabilities,
)
from token_service.http.routes.health import healthz, readyz
from token_service.http.routes.ivs_events import ivs_events
from token_service.http.routes.metrics import metrics as metrics_route
from token_service.http.routes.tokens import (
    DOCUMENTED,
    MAX_BODY_BYTES,
    create_participant_token,
)
from token_service.http.service_app import ServiceApp
from token_service.http.services import Services
from token_service.infra.cache import Cache, MemoryCache, RedisCache, TieredCache
from token_service.infra.lane import RedisLane, lane_for
from token_service.infra.persistence import warn_unless_persistent
from token_service.infra.redis import RedisClient, close_redis
from token_service.ivs.budget import IvsCallBudget
from token_service.ivs.client import Ivs, RetryPolicy
from token_service.keys.metrics import KeyRingCollector
from token_service.mapping.disconnect_worker import DisconnectWorker
from token_service.mapping.moderation import Moderation
from token_service.observability.metrics import Children, Metrics
from token_service.tokens.desk import TokenDesk
from token_service.tokens.exchange import Exchanger
from token_service.tokens.mode import Mode

if TYPE_CHECKING:
    from mypy_boto3_ivs_realtime import IvsrealtimeClient
    from opentelemetry.sdk.trace import TracerProvider

from token_service.bootstrap.clients import (
    IVS_WORKERS,
    build_ivs,
    build_redis_client,
    clear_transport_warnings,
)
from token_service.bootstrap.features import (
    build_authentication,
    build_demo_settings,
    build_disconnect_budget,
    build_issuer,
    build_ivs_budget,
    build_lookup_budget,
    build_policy,
    build_rate_limits,
    build_stage_directory,
    build_user_naming,
)
from token_service.bootstrap.lifespan import Starter, lifespan_of
from token_service.bootstrap.readiness import readiness_checks

log = logging.getLogger(__name__)

#: A ban's disconnect is held this much longer than one IVS call may take.
DISCONNECT_LEASE_MARGIN_SECONDS = 10.0


def _exchange_counter(metrics: Metrics) -> Callable[[str, bool], None]:
    """`token_service_token_exchanges{by, publish}`: exchanges by who asked and the result."""
    counter = Counter(
        "token_service_token_exchanges",
        "Participant token exchanges, by who asked (participant, admin) and PUBLISH granted",
        ["by", "publish"],
        registry=metrics.registry,
    )
    return lambda by, publish: counter.labels(by, "true" if publish else "false").inc()


@dataclass(frozen=True)
class _Budgets:
    """The shared budgets pacing IVS's operations with a per-account quota."""

    token: IvsCallBudget
    lookup: IvsCallBudget
    disconnect: IvsCallBudget


def _paced_ivs(
    settings: Settings,
    ivs_client: IvsrealtimeClient | None,
    redis_client: RedisClient | None,
    metrics: Metrics,
    lane: RedisLane | None,
) -> tuple[Ivs, _Budgets]:
    """The IVS adapter with its budgets: CreateParticipantToken's, GetStage's and
    DisconnectParticipant's."""
    budgets = _Budgets(
        token=build_ivs_budget(settings, redis_client, metrics, lane),
        lookup=build_lookup_budget(settings, redis_client, metrics),
        disconnect=build_disconnect_budget(settings, redis_client, metrics),
    )
    # One update per IVS call: each (operation, outcome) child looked up once.
    ivs_calls = Children(metrics.ivs_calls)
    ivs = Ivs(
        ivs_client or build_ivs(settings),
        IVS_WORKERS,
        retry=RetryPolicy(
            max_attempts=settings.ivs.max_attempts, deadline_seconds=settings.ivs.deadline_seconds
        ),
        pacers={
            "CreateParticipantToken": budgets.token,
            "GetStage": budgets.lookup,
            "DisconnectParticipant": budgets.disconnect,
        },
        on_call=lambda operation, outcome: ivs_calls(operation, outcome).inc(),
    )
    return ivs, budgets


def _disconnect_worker(
    settings: Settings, mapping: MappingRuntime, ivs: Ivs, metrics: Metrics
) -> DisconnectWorker:
    """This replica's share of the bans' disconnects, paced by the shared budget."""
    outcomes = Children(metrics.ban_disconnects)
    return DisconnectWorker(
        mapping.disconnects,
        mapping.store,
        ivs,
        # One IVS call ends by its deadline (budget waits and retries included): a holder
        # finishes well inside its lease, and a dead one's items come back soon after.
        lease_seconds=settings.ivs.deadline_seconds + DISCONNECT_LEASE_MARGIN_SECONDS,
        on_outcome=lambda outcome: outcomes(outcome).inc(),
        on_queued=metrics.ban_disconnects_pending.set,
    )


def _warn_of_clear_transports(settings: Settings) -> None:
    for setting, warning in clear_transport_warnings(settings):
        # The setting's name and what is exposed; never the URL (it may hold a password).
        log.warning(warning, extra={"event": "insecure_transport", "setting": setting})


async def _check_persistence(client: RedisClient, _spawn: object) -> None:
    """Bans and the mapping log live in Redis: say at start-up if a restart would lose them."""
    await warn_unless_persistent(client)


def create_app(
    settings: Settings,
    *,
    ivs_client: IvsrealtimeClient | None = None,
    redis_client: RedisClient | None = None,
    http_client: httpx.AsyncClient | None = None,
    clock: Callable[[], datetime] | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Litestar:
    """Build the HTTP application and every adapter it needs from `settings`.

    `tracer_provider`: trace with it (a test's in-memory exporter) whatever the settings say.

    Configuration problems (policy file, keys directory, authentication) raise
    `ConfigurationError` here, before anything listens.
    """
    owned_http = http_client is None
    http = http_client or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    metrics = Metrics()
    _warn_of_clear_transports(settings)
    owned_redis = redis_client is None and settings.redis.url is not None
    redis_client = redis_client or build_redis_client(settings)
    # The token path's script calls (admission, record, IVS budget): one connection.
    lane = lane_for(
        settings.redis.url.reveal() if redis_client is not None and settings.redis.url else None,
        connect_timeout=settings.redis.timeout_seconds,
    )
    ivs, budgets = _paced_ivs(settings, ivs_client, redis_client, metrics, lane)
    cache: Cache = (
        TieredCache(RedisCache(redis_client)) if redis_client is not None else MemoryCache()
    )
    policy = build_policy(settings)
    ring = build_key_ring(settings, ivs, policy, redis_client=redis_client, clock=clock)
    metrics.add_collector(KeyRingCollector(ring))
    key_runtime = build_key_runtime(settings, ring)
    stages = build_stage_directory(settings, ivs, cache)
    issuer = build_issuer(settings, ring, stages, ivs, clock)
    rate_limits = build_rate_limits(settings)
    authentication = build_authentication(settings, http)
    # Outside local mode the admission script also takes the IVS budget's first slot.
    folded = budgets.token if settings.mode is not Mode.LOCAL else None
    mapping = build_mapping(settings, redis_client, metrics, lane, folded)
    disconnect_worker = _disconnect_worker(settings, mapping, ivs, metrics)
    desk = TokenDesk(
        policy=policy,
        issuer=issuer,
        gate=mapping.gate,
        rate_limits=rate_limits,
        hooks=_IssuanceMetrics(metrics),
    )
    exchanger = Exchanger(
        policy=policy,
        gate=mapping.gate,
        rate_limits=rate_limits,
        mapping=mapping.store,
        keys=ring,
        stages=stages,
        hooks=_IssuanceMetrics(metrics),
        clock=clock or (lambda: datetime.now(UTC)),
        on_exchanged=_exchange_counter(metrics),
        usage=ring.usage,
    )
    services = Services(
        authenticator=authentication.authenticator,
        desk=desk,
        key_ring=ring,
        admin=(
            AdminTokens([t.reveal() for t in settings.admin_tokens])
            if settings.admin_tokens
            else None
        ),
        mapping=mapping.store,
        moderation=Moderation(
            mapping.store,
            ivs,
            mapping.disconnects,
            on_bans_changed=mapping.bans_changed,
            on_queued=disconnect_worker.wake,
        ),
        trusted_proxies=settings.http.trusted_proxies,
        events_secret=settings.mapping.events_secret.reveal()
        if settings.mapping.events_secret
        else None,
        readiness=readiness_checks(settings, ring, ivs, redis_client, authentication.jwks),
        exchanger=exchanger,
        proxy_header=settings.http.trusted_proxy_header,
        user_naming=build_user_naming(settings),
        admin_throttle=build_admin_throttle(settings, redis_client, metrics),
        on_admin_refused=admin_refusal_counter(metrics),
    )

    starters: list[Starter] = []
    if authentication.jwks is not None:
        starters.append(authentication.jwks.start)
    starters.append(key_runtime.start)
    if settings.mode is not Mode.LOCAL:
        # Joins the replicas sharing the budget, so each knows its share at once.
        starters.append(budgets.token.start)
    if settings.mode is not Mode.IVS:
        starters.append(budgets.lookup.start)
    # The disconnects: every replica, whatever its mode (bans are the admin's, not the mode's).
    starters.extend([mapping.start, budgets.disconnect.start, disconnect_worker.start])
    if redis_client is not None:
        starters.append(functools.partial(_check_persistence, redis_client))
    closers: list[Callable[[], Awaitable[None]]] = [
        disconnect_worker.close,
        budgets.disconnect.close,
        mapping.close,
        key_runtime.close,
        budgets.token.close,
        budgets.lookup.close,
    ]
    if lane is not None:
        closers.append(lane.close)
    if authentication.jwks is not None:
        closers.append(authentication.jwks.close)
    if owned_redis and redis_client is not None:
        closers.append(functools.partial(close_redis, redis_client))
    if owned_http:
        closers.append(http.aclose)
    tracing = build_tracing(settings.tracing, tracer_provider)
    lifespans: list[Callable[[Litestar], AbstractAsyncContextManager[Any]]] = [
        *([tracing.lifespan] if tracing is not None else []),
        lifespan_of(redis_client, starters, closers, ivs),
    ]

    demo = build_demo_settings(settings)

    def provide_services() -> Services:
        return services

    app = ServiceApp(
        route_handlers=[
            create_participant_token,
            exchange_participant_token,
            set_participant_capabilities,
            healthz,
            readyz,
            metrics_route,
            ivs_events,
            AdminKeysController,
            AdminParticipantsController,
            *demo_route_handlers(demo),
        ],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=exception_handlers(),
        # With TOKEN_SERVICE_ADMIN_PORT, the public port does not serve /admin (nor /metrics
        # or /schema unless public); without it, private operational routes need an admin.
        guards=listener_guard(settings.server.admin_port, private_ops_routes(settings)),
        middleware=[
            # Outermost: a preflight is answered before it is timed or given a request id,
            # as Litestar's app-wide CORS did; only the routes a browser app calls get it.
            *cors_middleware(settings.http.cors_origins),
            # The server span holds everything below, so every line logged in a request
            # (the access log's too) carries its trace id.
            *(tracing.middleware if tracing is not None else []),
            request_id_middleware,
            http_metrics_middleware(HttpMetrics(metrics.registry)),
            client_disconnect_middleware,
        ],
        lifespan=lifespans,
        state=State({"services": services, "metrics": metrics, DEMO_STATE_KEY: demo}),
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=_openapi(),
        plugins=[StrictStructSchemaPlugin()],
        debug=False,
        logging_config=None,
    )
    return _finished(app, settings)


def _finished(app: ServiceApp, settings: Settings) -> ServiceApp:
    # Needs the routes as built, so it is added once they are.
    app.before_send.append(allow_header_hook(app))
    app.access_log = _access_log(settings)
    return app


def _access_log(settings: Settings) -> AccessLog | None:
    if not settings.logging.access_log:
        return None
    return AccessLog(
        probes=settings.logging.access_log_probes,
        probe_sample_rate=settings.logging.access_log_probe_sample_rate,
        trusted_proxies=settings.http.trusted_proxies,
        proxy_header=settings.http.trusted_proxy_header,
    )


def _openapi() -> DocumentedOpenAPIConfig:
    return DocumentedOpenAPIConfig(
        documented=DOCUMENTED,
        title="IVS participant token service",
        version=package_version(),
        description=("Issues Amazon IVS real-time participant tokens to authenticated app users."),
        components=Components(
            security_schemes={
                "appUserJwt": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="The app user's JWT (shared secret HS256 or OIDC)",
                ),
                "adminToken": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="One of TOKEN_SERVICE_ADMIN_TOKENS",
                ),
                "eventsSecret": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="TOKEN_SERVICE_EVENTS_SECRET (the EventBridge connection's key)",
                ),
            },
            headers=dict(RESPONSE_HEADERS),
        ),
        path="/schema",
    )
