"""Each feature's object built from settings: the policy, authentication, the issuers, the
CreateParticipantToken, GetStage and DisconnectParticipant budgets and the rate limits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from token_service.admission.ratelimit import RateLimits
from token_service.auth import (
    Authenticator,
    CompositeAuthenticator,
    JwksCache,
    OidcAuthenticator,
    SharedSecretAuthenticator,
    insecure_url_problem,
    mint_user_token,
)
from token_service.config import Settings
from token_service.errors import ConfigurationError
from token_service.http.routes.demo import DemoSettings, UserTokenMinter
from token_service.infra.cache import Cache
from token_service.infra.lane import RedisLane
from token_service.infra.redis import RedisClient
from token_service.ivs.budget import (
    IVS_DISCONNECT_QUOTA_PER_SECOND,
    IVS_GET_STAGE_QUOTA_PER_SECOND,
    BudgetRate,
    IvsCallBudget,
    MemorySlots,
    RedisSlots,
    SlotStore,
    quota_warning,
)
from token_service.ivs.client import Ivs
from token_service.ivs.stages import StageDirectory
from token_service.keys import KeyRing
from token_service.mapping.users import UserNaming
from token_service.observability.metrics import Children, Metrics
from token_service.policy import Policy, load_policy
from token_service.tokens.counting import CountingIssuer
from token_service.tokens.issuers import (
    AutoIssuer,
    Issuer,
    IvsIssuer,
    IvsWithLocalFallback,
    LocalIssuer,
)
from token_service.tokens.mode import Mode

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def build_policy(settings: Settings) -> Policy:
    return load_policy(
        settings.policy.file,
        user_id_mode=settings.policy.user_id_mode.value,
        pseudonym_secret=(
            settings.policy.user_id_pseudonym_secret.reveal_bytes()
            if settings.policy.user_id_pseudonym_secret
            else None
        ),
    )


@dataclass
class Authentication:
    authenticator: Authenticator
    jwks: JwksCache | None


def build_authentication(settings: Settings, http: httpx.AsyncClient) -> Authentication:
    auth = settings.auth
    shared = None
    if auth.shared_secret is not None:
        shared = SharedSecretAuthenticator(
            auth.shared_secret.reveal_bytes(),
            issuer=auth.shared_secret_issuer,
            audience=auth.shared_secret_audience,
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
        if auth.allow_insecure_jwks and insecure_url_problem(auth.jwks_url) is not None:
            log.warning(
                "TOKEN_SERVICE_AUTH_JWKS_URL is plain http:// to a host that is not loopback "
                "(allowed by TOKEN_SERVICE_AUTH_ALLOW_INSECURE_JWKS): anyone on that network "
                "path can replace the signing keys",
                extra={"event": "insecure_transport", "setting": "TOKEN_SERVICE_AUTH_JWKS_URL"},
            )
        jwks = JwksCache(
            auth.jwks_url,
            http,
            refresh_interval=auth.jwks_refresh_seconds,
            allow_insecure=auth.allow_insecure_jwks,
        )
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
        return Authentication(CompositeAuthenticator(shared, oidc), jwks)
    if shared is not None:
        return Authentication(shared, None)
    if oidc is not None:
        return Authentication(oidc, jwks)
    raise ConfigurationError(["no app-user authentication configured"])


def shared_slots(
    settings: Settings,
    redis_client: RedisClient | None,
    rate: BudgetRate,
    *,
    operation_prefix: str,
    max_wait_ms: int,
    name: str,
    on_degraded: Callable[[str], None] | None = None,
    lane: RedisLane | None = None,
) -> SlotStore:
    """A budget's slots: in Redis when configured (shared by every replica; one key per IVS
    operation, account and region: `operation_prefix` is empty for CreateParticipantToken,
    whose keys predate the others), in this process otherwise."""
    if redis_client is None:
        return MemorySlots(rate)
    return RedisSlots(
        redis_client,
        rate,
        scope=f"{operation_prefix}{settings.ivs.account_id or 'account'}:{settings.ivs.region}",
        on_error=settings.ivs.token_on_redis_error.value,
        # A false "Redis failed" splits the shared budget, and the caller is ready to
        # wait up to the maximum wait for a slot anyway: so not less than that.
        timeout_seconds=min(1.0, max(settings.redis.timeout_seconds, max_wait_ms / 1000)),
        on_degraded=on_degraded,
        lane=lane,
        name=name,
    )


def build_ivs_budget(
    settings: Settings,
    redis_client: RedisClient | None,
    metrics: Metrics,
    lane: RedisLane | None = None,
) -> IvsCallBudget:
    """The CreateParticipantToken budget: in Redis when configured, shared by replicas."""
    rate = BudgetRate.of(settings.ivs.token_rate)
    warning = quota_warning(rate)
    if warning is not None and settings.mode is not Mode.LOCAL:
        log.warning(warning)
    slots = shared_slots(
        settings,
        redis_client,
        rate,
        operation_prefix="",
        max_wait_ms=settings.ivs.token_max_wait_ms,
        name="IVS token budget",
        on_degraded=lambda fallback: metrics.ivs_budget_degraded.labels(fallback).inc(),
        lane=lane,
    )

    return IvsCallBudget(
        slots,
        max_wait_seconds=settings.ivs.token_max_wait_ms / 1000,
        on_decision=_budget_recorder(metrics, "CreateParticipantToken"),
    )


def _budget_recorder(metrics: Metrics, operation: str) -> Callable[[str, float], None]:
    """A budget's answers and waits, counted under the IVS operation it paces."""
    decisions = Children(metrics.ivs_budget_decisions)
    wait = metrics.ivs_budget_wait_seconds.labels(operation)

    def record(outcome: str, waited: float) -> None:
        decisions(operation, outcome).inc()
        if outcome != "refused":
            wait.observe(waited)

    return record


def build_lookup_budget(
    settings: Settings,
    redis_client: RedisClient | None,
    metrics: Metrics,
) -> IvsCallBudget:
    """The GetStage budget: stage lookups of every replica, under IVS's 5/s per account.

    Only admitted requests look a stage up, so each user's and IP's limits bound what
    they can spend of it; this budget bounds all of them together, so IVS never
    throttles GetStage for the account (its other users, the operator's own tools).
    """
    rate = BudgetRate.of(settings.ivs.lookup_rate, IVS_GET_STAGE_QUOTA_PER_SECOND)
    warning = quota_warning(rate, "TOKEN_SERVICE_IVS_LOOKUP_RATE", "GetStage")
    if warning is not None and settings.mode is not Mode.IVS:
        log.warning(warning)
    slots = shared_slots(
        settings,
        redis_client,
        rate,
        operation_prefix="get-stage:",
        max_wait_ms=settings.ivs.lookup_max_wait_ms,
        name="IVS stage lookup budget",
    )
    return IvsCallBudget(
        slots,
        max_wait_seconds=settings.ivs.lookup_max_wait_ms / 1000,
        on_decision=_budget_recorder(metrics, "GetStage"),
        operation="GetStage",
    )


#: How long a disconnect may wait for a slot of the shared budget: the admin's single
#: disconnect waits behind at most a few of the bans' (each replica's workers reserve one
#: slot each), and a ban's worker gives an item back when no slot comes (it retries).
DISCONNECT_MAX_WAIT_SECONDS = 5.0


def build_disconnect_budget(
    settings: Settings,
    redis_client: RedisClient | None,
    metrics: Metrics,
) -> IvsCallBudget:
    """The DisconnectParticipant budget: every replica's disconnects (a ban's, an admin's),
    under IVS's 5/s per account, so that a ban of a user with many live participants draws
    no throttling."""
    rate = BudgetRate.of(settings.ivs.disconnect_rate, IVS_DISCONNECT_QUOTA_PER_SECOND)
    warning = quota_warning(rate, "TOKEN_SERVICE_IVS_DISCONNECT_RATE", "DisconnectParticipant")
    if warning is not None:
        log.warning(warning)
    slots = shared_slots(
        settings,
        redis_client,
        rate,
        operation_prefix="disconnect:",
        max_wait_ms=int(DISCONNECT_MAX_WAIT_SECONDS * 1000),
        name="IVS disconnect budget",
    )
    return IvsCallBudget(
        slots,
        max_wait_seconds=DISCONNECT_MAX_WAIT_SECONDS,
        on_decision=_budget_recorder(metrics, "DisconnectParticipant"),
        operation="DisconnectParticipant",
    )


def build_stage_directory(settings: Settings, ivs: Ivs, cache: Cache) -> StageDirectory:
    """Stage endpoints from GetStage, cached (shared by the replicas and the CLI when the
    cache is in Redis)."""
    return StageDirectory(
        ivs,
        cache,
        region=settings.ivs.region,
        account_id=settings.ivs.account_id,
        ttl_seconds=settings.ivs.stage_cache_seconds,
        not_found_ttl_seconds=settings.ivs.stage_not_found_cache_seconds,
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
    if settings.ivs.fallback_to_local:
        return IvsWithLocalFallback(remote, local, ring)
    return remote


def build_rate_limits(settings: Settings) -> RateLimits:
    """The service-wide limits, shared by the issue and the exchange flows."""
    return RateLimits(user=settings.limits.user, ip=settings.limits.ip, stage=settings.limits.stage)


def build_user_naming(settings: Settings) -> UserNaming:
    """How operators name an app user (bans, lookups): with a shared secret and OIDC both
    accepted, the same user id can be two users, so the issuer must be given."""
    auth = settings.auth
    both = auth.shared_secret is not None and auth.jwks_url is not None
    return UserNaming(
        issuer_required=both, oidc_issuer=auth.issuer if auth.jwks_url is not None else None
    )


def build_user_token_minter(settings: Settings) -> UserTokenMinter | None:
    """Mints app-user JWTs as the app's own login would, with the shared secret and the
    issuer and audience the service checks; None without a shared secret. Used by
    `token-service user-token`, `serve --dev`'s banner and the demo page."""
    secret = settings.auth.shared_secret
    if secret is None:
        return None
    key = secret.reveal_bytes()
    issuer = settings.auth.shared_secret_issuer
    audience = settings.auth.shared_secret_audience

    def mint(sub: str, roles: Sequence[str], ttl_seconds: int) -> str:
        return mint_user_token(
            key,
            sub=sub,
            roles=list(roles),
            ttl_seconds=ttl_seconds,
            issuer=issuer,
            audience=audience,
        )

    return mint


def build_demo_settings(settings: Settings) -> DemoSettings:
    """The demo page's settings."""
    return DemoSettings(
        enabled=settings.demo_enabled,
        dev=settings.dev,
        stage_arn=settings.http.demo_stage_arn,
        web_sdk_dir=settings.http.web_sdk_dir,
        mint_user_token=build_user_token_minter(settings),
    )
