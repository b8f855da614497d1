"""The composition root: `create_app(settings, **overrides)` builds, wires, starts and
closes every adapter. Nothing else in the package constructs a client.

Tests pass their own clients (a boto3 client pointed at the emulator, a Redis
client on a private server, an httpx client) as overrides; production passes none.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import redis.asyncio
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from prometheus_client import Counter

from token_service import package_version
from token_service.admission.ratelimit import RateLimits
from token_service.auth import (
    AdminTokens,
    Authenticator,
    CompositeAuthenticator,
    JwksCache,
    OidcAuthenticator,
    SharedSecretAuthenticator,
)
from token_service.config import Mode, Settings
from token_service.errors import ConfigurationError, DomainError
from token_service.http.cors import cors_config
from token_service.http.listeners import listener_guard
from token_service.http.metrics import HttpMetrics, http_metrics_middleware
from token_service.http.openapi import StrictStructSchemaPlugin
from token_service.http.options_allow import allow_header_hook
from token_service.http.problems import exception_handlers
from token_service.http.request_id import request_id_middleware
from token_service.http.routes.admin_keys import AdminKeysController
from token_service.http.routes.admin_participants import AdminParticipantsController
from token_service.http.routes.demo import demo_route_handlers
from token_service.http.routes.exchange import (
    exchange_participant_token,
    set_participant_capabilities,
)
from token_service.http.routes.health import healthz, readyz
from token_service.http.routes.ivs_events import ivs_events
from token_service.http.routes.metrics import metrics as metrics_route
from token_service.http.routes.tokens import create_participant_token
from token_service.http.services import ReadinessCheck, Services
from token_service.infra.background import Spawn
from token_service.infra.cache import Cache, MemoryCache, RedisCache, TieredCache
from token_service.infra.lane import RedisLane, lane_for
from token_service.infra.redis import RedisClient, build_redis, close_redis, connect
from token_service.ivs.budget import (
    BudgetRate,
    IvsTokenBudget,
    MemorySlots,
    RedisSlots,
    SlotStore,
    quota_warning,
)
from token_service.ivs.client import DEFAULT_WORKERS, Ivs, RetryPolicy, build_client
from token_service.ivs.stages import StageDirectory
from token_service.keys import KeyRing
from token_service.keys.metrics import KeyRingCollector
from token_service.keys.wiring import build_key_ring as build_key_ring  # noqa: PLC0414 - re-export
from token_service.keys.wiring import build_key_runtime, check_key_ring
from token_service.mapping.moderation import Moderation
from token_service.mapping_runtime import IssuanceMetrics as _IssuanceMetrics
from token_service.mapping_runtime import build_mapping
from token_service.observability.metrics import Metrics
from token_service.policy import Policy, load_policy
from token_service.tokens.counting import CountingIssuer
from token_service.tokens.desk import TokenDesk
from token_service.tokens.exchange import Exchanger
from token_service.tokens.issuers import (
    AutoIssuer,
    Issuer,
    IvsIssuer,
    IvsWithLocalFallback,
    LocalIssuer,
)

if TYPE_CHECKING:
    from mypy_boto3_ivs_realtime import IvsrealtimeClient

log = logging.getLogger(__name__)

#: Bodies over this are refused with 413 before they are read whole.
MAX_BODY_BYTES = 16 * 1024
#: How long a successful IVS reachability check is trusted (readiness probes are frequent,
#: IVS's control-plane quotas are small).
IVS_CHECK_TTL_SECONDS = 30.0
#: Threads calling IVS; the boto3 connection pool gets as many connections.
IVS_WORKERS = DEFAULT_WORKERS


def build_ivs(settings: Settings) -> IvsrealtimeClient:
    return build_client(
        region=settings.aws_region,
        endpoint_url=settings.ivs_endpoint_url,
        connect_timeout=settings.ivs_connect_timeout_seconds,
        read_timeout=settings.ivs_read_timeout_seconds,
        pool_size=IVS_WORKERS,
    )


def build_ivs_budget(
    settings: Settings,
    redis_client: RedisClient | None,
    metrics: Metrics,
    lane: RedisLane | None = None,
) -> IvsTokenBudget:
    """The CreateParticipantToken budget: in Redis when configured, shared by replicas."""
    rate = BudgetRate.of(settings.ivs_token_rate)
    warning = quota_warning(rate)
    if warning is not None and settings.mode is not Mode.LOCAL:
        log.warning(warning)
    slots: SlotStore
    if redis_client is not None:
        slots = RedisSlots(
            redis_client,
            rate,
            scope=f"{settings.aws_account_id or 'account'}:{settings.aws_region}",
            on_error=settings.ivs_token_on_redis_error.value,
            # A false "Redis failed" splits the shared budget, and the caller is ready to
            # wait up to the maximum wait for a slot anyway: so not less than that.
            timeout_seconds=min(
                1.0, max(settings.redis_timeout_seconds, settings.ivs_token_max_wait_ms / 1000)
            ),
            on_degraded=lambda fallback: metrics.ivs_budget_degraded.labels(fallback).inc(),
            lane=lane,
        )
    else:
        slots = MemorySlots(rate)

    def record(outcome: str, waited: float) -> None:
        metrics.ivs_budget_decisions.labels(outcome).inc()
        if outcome != "refused":
            metrics.ivs_budget_wait_seconds.observe(waited)

    return IvsTokenBudget(
        slots, max_wait_seconds=settings.ivs_token_max_wait_ms / 1000, on_decision=record
    )


def build_issuer(
    settings: Settings,
    ring: KeyRing,
    stages: StageDirectory,
    ivs: Ivs,
    clock: Callable[[], datetime] | None,
) -> Issuer:
    local: Issuer = CountingIssuer(
        LocalIssuer(ring, stages) if clock is None else LocalIssuer(ring, stages, clock),
        ring.usage,
    )
    if settings.mode is Mode.LOCAL:
        return local
    remote = IvsIssuer(ivs, stages) if clock is None else IvsIssuer(ivs, stages, clock)
    if settings.mode is Mode.AUTO:
        return AutoIssuer(local, remote, ring)
    if settings.ivs_fallback_to_local:
        return IvsWithLocalFallback(remote, local, ring)
    return remote


def build_operator_ivs(settings: Settings, workers: int = 2) -> Ivs:
    """The IVS adapter for one-off operator work (CLI, dev server): the settings'
    retry budget and deadline, a small thread pool, no budget pacing."""
    return Ivs(
        build_ivs(settings),
        workers,
        retry=RetryPolicy(
            max_attempts=settings.ivs_max_attempts, deadline_seconds=settings.ivs_deadline_seconds
        ),
    )


def build_policy(settings: Settings) -> Policy:
    return load_policy(
        settings.policy_file,
        user_id_mode=settings.user_id_mode.value,
        pseudonym_secret=(
            settings.user_id_pseudonym_secret.reveal_bytes()
            if settings.user_id_pseudonym_secret
            else None
        ),
    )


def check_signing_key(settings: Settings) -> None:
    """In local mode, refuse to serve without an active key (every request would fail), or
    with a key that is unreadable, not P-384, or unknown to IVS (`keys.wiring`)."""
    check_key_ring(settings)


@dataclass
class _Authentication:
    authenticator: Authenticator
    jwks: JwksCache | None


def _build_authentication(settings: Settings, http: httpx.AsyncClient) -> _Authentication:
    auth = settings.auth
    shared = None
    if auth.shared_secret is not None:
        # With OIDC configured too, issuer/audience belong to the OIDC provider.
        only_shared = auth.jwks_url is None
        shared = SharedSecretAuthenticator(
            auth.shared_secret.reveal_bytes(),
            issuer=auth.issuer if only_shared else None,
            audience=auth.audience if only_shared else None,
            user_id_claim=auth.user_id_claim,
            roles_claim=auth.roles_claim,
            leeway_seconds=auth.leeway_seconds,
            authorized_parties=auth.authorized_parties,
        )
    oidc = None
    jwks = None
    if auth.jwks_url is not None:
        if auth.issuer is None or auth.audience is None:
            raise ConfigurationError(["OIDC needs TOKEN_SERVICE_AUTH_ISSUER and _AUDIENCE"])
        jwks = JwksCache(auth.jwks_url, http, refresh_interval=auth.jwks_refresh_seconds)
        oidc = OidcAuthenticator(
            jwks,
            issuer=auth.issuer,
            audience=auth.audience,
            algorithms=auth.algorithms,
            user_id_claim=auth.user_id_claim,
            roles_claim=auth.roles_claim,
            leeway_seconds=auth.leeway_seconds,
            authorized_parties=auth.authorized_parties,
        )
    if shared is not None and oidc is not None:
        return _Authentication(CompositeAuthenticator(shared, oidc), jwks)
    if shared is not None:
        return _Authentication(shared, None)
    if oidc is not None:
        return _Authentication(oidc, jwks)
    raise ConfigurationError(["no app-user authentication configured"])


class _CachedCheck:
    """Runs an expensive readiness check at most once per `ttl` while it succeeds."""

    def __init__(self, check: ReadinessCheck, ttl: float) -> None:
        self._check = check
        self._ttl = ttl
        self._ok_until = 0.0

    async def __call__(self) -> str | None:
        if time.monotonic() < self._ok_until:
            return None
        result = await self._check()
        if result is None:
            self._ok_until = time.monotonic() + self._ttl
        return result


def _readiness(
    settings: Settings,
    ring: KeyRing,
    ivs: Ivs,
    redis_client: RedisClient | None,
    jwks: JwksCache | None,
) -> dict[str, ReadinessCheck]:
    checks: dict[str, ReadinessCheck] = {}

    if settings.mode is Mode.LOCAL:

        async def key_check() -> str | None:
            return None if ring.active() is not None else "no active signing key"

        checks["signingKey"] = key_check

    if redis_client is not None:
        client = redis_client

        async def redis_check() -> str | None:
            try:
                await client.ping()
            except (redis.RedisError, OSError) as exc:
                return f"unreachable ({exc.__class__.__name__})"
            return None

        checks["redis"] = redis_check

    async def ivs_check() -> str | None:
        try:
            await ivs.ping()
        except DomainError as exc:
            return exc.detail
        return None

    checks["ivs"] = _CachedCheck(ivs_check, IVS_CHECK_TTL_SECONDS)

    if jwks is not None:
        cache = jwks

        async def jwks_check() -> str | None:
            return None if cache.ready else "no key set fetched from the JWKS URL yet"

        checks["jwks"] = jwks_check
    return checks


async def _await(coroutine: Coroutine[Any, Any, None]) -> None:
    await coroutine


#: Starts a component, handing it the spawner for its background loops.
Starter = Callable[[Spawn], Awaitable[None]]


def _lifespan(
    redis_client: RedisClient | None,
    starters: list[Starter],
    closers: list[Callable[[], Awaitable[None]]],
    ivs: Ivs,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if redis_client is not None:
            try:
                await connect(redis_client)
            except (redis.RedisError, OSError) as exc:
                # Not fatal: readiness reports it and the rate limiter falls back.
                log.warning("Redis unreachable at start-up (%s)", exc.__class__.__name__)
        try:
            # Every background loop runs in this task group (see background.py), and
            # has ended before the clients it uses are closed below.
            async with anyio.create_task_group() as background:

                def spawn(loop: Coroutine[Any, Any, None]) -> None:
                    background.start_soon(_await, loop)

                for start in starters:
                    await start(spawn)
                try:
                    yield
                finally:
                    background.cancel_scope.cancel()
        finally:
            for close in closers:
                await close()
            ivs.close()
            log.info("clients closed", extra={"event": "clients_closed"})

    return lifespan


def _build_redis_client(settings: Settings) -> RedisClient | None:
    if settings.redis_url is None:
        log.warning(
            "TOKEN_SERVICE_REDIS_URL is not set: rate limits, the mapping log and caches "
            "are in process memory, not shared between replicas"
        )
        return None
    return build_redis(settings.redis_url.reveal(), timeout_seconds=settings.redis_timeout_seconds)


def _exchange_counter(metrics: Metrics) -> Callable[[str, bool], None]:
    """`token_service_token_exchanges{by, publish}`: exchanges by who asked and the result."""
    counter = Counter(
        "token_service_token_exchanges",
        "Participant token exchanges, by who asked (participant, admin) and PUBLISH granted",
        ["by", "publish"],
        registry=metrics.registry,
    )
    return lambda by, publish: counter.labels(by, "true" if publish else "false").inc()


def create_app(
    settings: Settings,
    *,
    ivs_client: IvsrealtimeClient | None = None,
    redis_client: RedisClient | None = None,
    http_client: httpx.AsyncClient | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Litestar:
    """Build the HTTP application and every adapter it needs from `settings`.

    Configuration problems (policy file, keys directory, authentication) raise
    `ConfigurationError` here, before anything listens.
    """
    owned_http = http_client is None
    http = http_client or httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    metrics = Metrics()
    owned_redis = redis_client is None and settings.redis_url is not None
    redis_client = redis_client or _build_redis_client(settings)
    # The token path's script calls (admission, record, IVS budget): one connection.
    lane = lane_for(
        settings.redis_url.reveal() if redis_client is not None and settings.redis_url else None,
        connect_timeout=settings.redis_timeout_seconds,
    )
    ivs_budget = build_ivs_budget(settings, redis_client, metrics, lane)
    ivs = Ivs(
        ivs_client or build_ivs(settings),
        IVS_WORKERS,
        retry=RetryPolicy(
            max_attempts=settings.ivs_max_attempts, deadline_seconds=settings.ivs_deadline_seconds
        ),
        pacers={"CreateParticipantToken": ivs_budget},
        on_call=lambda operation, outcome: metrics.ivs_calls.labels(operation, outcome).inc(),
    )
    cache: Cache = (
        TieredCache(RedisCache(redis_client)) if redis_client is not None else MemoryCache()
    )
    policy = build_policy(settings)
    ring = build_key_ring(settings, ivs, policy, redis_client=redis_client, clock=clock)
    metrics.add_collector(KeyRingCollector(ring))
    key_runtime = build_key_runtime(settings, ring)
    stages = StageDirectory(
        ivs,
        cache,
        region=settings.aws_region,
        account_id=settings.aws_account_id,
        ttl_seconds=settings.stage_cache_seconds,
        not_found_ttl_seconds=settings.stage_not_found_cache_seconds,
    )
    issuer = build_issuer(settings, ring, stages, ivs, clock)
    authentication = _build_authentication(settings, http)
    # Outside local mode the admission script also takes the IVS budget's first slot.
    folded = ivs_budget if settings.mode is not Mode.LOCAL else None
    mapping = build_mapping(settings, redis_client, metrics, lane, folded)
    desk = TokenDesk(
        policy=policy,
        issuer=issuer,
        gate=mapping.gate,
        rate_limits=RateLimits(
            user=settings.rate_limit_user,
            ip=settings.rate_limit_ip,
            stage=settings.rate_limit_stage,
        ),
        hooks=_IssuanceMetrics(metrics),
    )
    exchanger = Exchanger(
        policy=policy,
        gate=mapping.gate,
        rate_limits=RateLimits(
            user=settings.rate_limit_user,
            ip=settings.rate_limit_ip,
            stage=settings.rate_limit_stage,
        ),
        mapping=mapping.store,
        keys=ring,
        stages=stages,
        hooks=_IssuanceMetrics(metrics),
        clock=clock or (lambda: datetime.now(UTC)),
        on_exchanged=_exchange_counter(metrics),
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
        moderation=Moderation(mapping.store, ivs, on_bans_changed=mapping.bans_changed),
        trusted_proxies=settings.trusted_proxies,
        events_secret=settings.events_secret.reveal() if settings.events_secret else None,
        readiness=_readiness(settings, ring, ivs, redis_client, authentication.jwks),
        exchanger=exchanger,
    )

    starters: list[Starter] = []
    if authentication.jwks is not None:
        starters.append(authentication.jwks.start)
    starters.append(key_runtime.start)
    if settings.mode is not Mode.LOCAL:
        # Joins the replicas sharing the budget, so each knows its share at once.
        starters.append(ivs_budget.start)
    starters.append(mapping.start)
    closers: list[Callable[[], Awaitable[None]]] = [
        mapping.close,
        key_runtime.close,
        ivs_budget.close,
    ]
    if lane is not None:
        closers.append(lane.close)
    if authentication.jwks is not None:
        closers.append(authentication.jwks.close)
    if owned_redis and redis_client is not None:
        closers.append(functools.partial(close_redis, redis_client))
    if owned_http:
        closers.append(http.aclose)
    lifespan = _lifespan(redis_client, starters, closers, ivs)
    lifespans: list[Callable[[Litestar], AbstractAsyncContextManager[Any]]] = [lifespan]

    def provide_services() -> Services:
        return services

    app = Litestar(
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
            *demo_route_handlers(settings),
        ],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=exception_handlers(),
        # With TOKEN_SERVICE_ADMIN_PORT, the public port does not serve /admin or /metrics.
        guards=listener_guard(settings.server.admin_port),
        middleware=[request_id_middleware, http_metrics_middleware(HttpMetrics(metrics.registry))],
        lifespan=lifespans,
        state=State({"services": services, "settings": settings, "metrics": metrics}),
        request_max_body_size=MAX_BODY_BYTES,
        cors_config=cors_config(settings),
        openapi_config=_openapi(),
        plugins=[StrictStructSchemaPlugin()],
        debug=False,
        logging_config=None,
    )
    # Needs the routes as built, so it is added once they are.
    app.before_send.append(allow_header_hook(app))
    return app


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
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
            }
        ),
        path="/schema",
    )
