"""The service's settings, as validated values (read by `config.env`, never from here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from token_service.admission.ratelimit import OnRedisError
from token_service.config.secrets import Secret
from token_service.domain import Rate
from token_service.http.access_log import ProbeLogging
from token_service.http.client_ip import ProxyHeader
from token_service.ivs.budget import BudgetOnRedisError
from token_service.keys.store import KeyStoreKind
from token_service.observability.logs import LogFormat
from token_service.observability.tracing import TraceExporter, TraceSampler
from token_service.policy.identity import UserIdMode
from token_service.tokens.mode import Mode


@dataclass(frozen=True)
class AuthSettings:
    shared_secret: Secret | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    algorithms: tuple[str, ...] = ("RS256",)
    user_id_claim: str = "sub"
    roles_claim: str = "roles"
    leeway_seconds: int = 30
    jwks_refresh_seconds: int = 600
    #: Client ids trusted in `azp` when a token lists several audiences (besides ours).
    authorized_parties: tuple[str, ...] = ()
    #: Fetch the JWKS over plain http:// from a host that is not loopback (an in-cluster
    #: provider without TLS); refused at start-up otherwise.
    allow_insecure_jwks: bool = False

    @property
    def configured(self) -> bool:
        return self.shared_secret is not None or self.jwks_url is not None

    @property
    def shared_secret_issuer(self) -> str | None:
        """The `iss` of shared-secret tokens: the configured one only when the secret is the
        only method (with OIDC too, the issuer and audience are the provider's)."""
        return self.issuer if self.jwks_url is None else None

    @property
    def shared_secret_audience(self) -> str | None:
        return self.audience if self.jwks_url is None else None


@dataclass(frozen=True)
class ServerSettings:
    """How `serve` listens: defaults for its flags, and the shutdown bound."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: Worker processes (each a whole app; Prometheus multiprocess mode above one).
    workers: int = 1
    #: When set, `/admin` and `/metrics` move to this port and the public one stops
    #: serving them, so the public port can be exposed alone.
    admin_port: int | None = None
    #: On SIGTERM, in-flight requests get this long to finish before they are cancelled.
    shutdown_timeout_seconds: int = 20
    #: A connection idle this long (before its first request or between two) is closed.
    #: Above a load balancer's idle timeout (an ALB's is 60 s), so that the balancer
    #: closes an idle connection first and never sends a request on one closing here.
    keep_alive_seconds: int = 75
    #: From a request's first byte, its request line and headers must arrive within this.
    head_timeout_seconds: int = 10
    #: From the end of a request's head, its whole body must arrive within this.
    body_timeout_seconds: int = 10
    #: How long a client may leave an answer unread (the send buffer full) before the
    #: connection is dropped.
    send_timeout_seconds: int = 30
    #: `/metrics` on the service port without an admin token. None: yes without an admin
    #: port, no with one (the admin port serves it), as before the setting existed.
    metrics_public: bool | None = None
    #: `/schema/...` (the OpenAPI document and its viewers) on the service port without an
    #: admin token.
    schema_public: bool = True

    @property
    def public_metrics(self) -> bool:
        return self.admin_port is None if self.metrics_public is None else self.metrics_public


@dataclass(frozen=True)
class RedisSettings:
    #: Redis for rate limits, the mapping log and shared caches; None: process memory.
    url: Secret | None = None
    #: The most one admission may wait for Redis before the fallback decides.
    timeout_seconds: float = 1.0


@dataclass(frozen=True)
class IvsSettings:
    """Amazon IVS: where it is, how calls to it are bounded, the CreateParticipantToken
    budget, and how long stage endpoints are cached."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    #: When set, only stages of this AWS account are served (others: 403).
    account_id: str | None = None
    connect_timeout_seconds: float = 2.0
    read_timeout_seconds: float = 5.0
    max_attempts: int = 3
    #: One IVS call, every attempt and wait included, ends by then.
    deadline_seconds: float = 8.0
    #: The CreateParticipantToken budget shared by every replica (IVS allows 50/s).
    token_rate: Rate = field(default_factory=lambda: Rate(45, 1))
    token_max_wait_ms: int = 250
    token_on_redis_error: BudgetOnRedisError = BudgetOnRedisError.LOCAL
    #: In ivs mode, sign locally (when an active key exists) once the budget is exhausted.
    fallback_to_local: bool = False
    stage_cache_seconds: int = 6 * 3600
    stage_not_found_cache_seconds: int = 60
    #: The GetStage budget shared by every replica (IVS allows 5/s per account): stage
    #: lookups for uncached stages, made only for admitted requests.
    lookup_rate: Rate = field(default_factory=lambda: Rate(3, 1))
    #: Patient: a cold cache meets a burst of stages at once (a deploy, a big event), and
    #: waiting a few seconds for a slot beats a 503 that IVS would cause anyway.
    lookup_max_wait_ms: int = 5000
    #: The DisconnectParticipant budget shared by every replica (IVS allows 5/s per
    #: account): a ban's disconnects and the admin's single ones.
    disconnect_rate: Rate = field(default_factory=lambda: Rate(4, 1))


@dataclass(frozen=True)
class KeySettings:
    """Signing keys: where they live, how changes spread, when they rotate."""

    store: KeyStoreKind = KeyStoreKind.FILES
    dir: Path = Path("keys")
    read_only: bool = False
    secrets_prefix: str = "token-service/signing-keys/"
    secrets_kms_key_id: str | None = None
    secretsmanager_endpoint_url: str | None = None
    #: None: scheduled rotation off.
    rotation_interval_seconds: int | None = None
    refresh_seconds: float = 2.0
    ivs_check_seconds: float = 30.0
    delete_margin_seconds: int = 300
    #: How often keys at IVS are reconciled with the ring (orphans of failed imports).
    reconcile_seconds: float = 300.0


@dataclass(frozen=True)
class PolicySettings:
    file: Path | None = None
    user_id_mode: UserIdMode = UserIdMode.APP
    user_id_pseudonym_secret: Secret | None = None


@dataclass(frozen=True)
class LimitSettings:
    """The service-wide rate limits, and what the limiter does while Redis fails."""

    user: Rate = field(default_factory=lambda: Rate(10, 60))
    ip: Rate = field(default_factory=lambda: Rate(60, 60))
    stage: Rate = field(default_factory=lambda: Rate(600, 60))
    on_redis_error: OnRedisError = OnRedisError.LOCAL
    #: Failed admin authentications allowed per client IP, after which the IP is locked
    #: out of the admin routes until the rate lets one more failure through.
    admin_auth_failures: Rate = field(default_factory=lambda: Rate(10, 60))


@dataclass(frozen=True)
class MappingSettings:
    #: How long mapping records are kept after their token expires.
    retention_seconds: int = 30 * 86400
    #: While Redis fails: refuse tokens (`deny`) or keep records in an outbox (`outbox`).
    on_redis_error: str = "deny"
    #: Authenticates EventBridge deliveries to POST /v1/ivs-events; unset: route off.
    events_secret: Secret | None = None


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP edge: who may call cross-origin, whose forwarding headers are believed, and
    the demo page."""

    #: Browser origins (`scheme://host[:port]`) allowed to call the API cross-origin.
    cors_origins: tuple[str, ...] = ()
    #: Peers whose X-Forwarded-For / Forwarded headers are believed.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    #: The demo page `GET /demo`: None means on with `serve --dev` and off otherwise.
    demo_page: bool | None = None
    #: The stage the demo page offers first (`serve --dev` sets its demo stage).
    demo_stage_arn: str | None = None
    #: Where `make web-sdk` installs the IVS web broadcast SDK that the demo page loads.
    web_sdk_dir: Path = Path(".web-sdk")
    #: The one header the trusted proxies write, and the only one believed from them.
    trusted_proxy_header: ProxyHeader = ProxyHeader.X_FORWARDED_FOR


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    format: LogFormat = LogFormat.AUTO
    #: One line per HTTP request, whatever its status.
    access_log: bool = True
    #: Probes and scrapes in the access log: off, on, or a sampled share.
    access_log_probes: ProbeLogging = ProbeLogging.OFF
    access_log_probe_sample_rate: float = 0.01


@dataclass(frozen=True)
class TracingSettings:
    """OpenTelemetry tracing, from the SDK's standard `OTEL_*` variables; off unless an
    exporter is named (where the specification's default is otlp: a service that starts
    sending spans to localhost:4318 because nothing was said would surprise)."""

    exporters: tuple[TraceExporter, ...] = ()
    #: The full URL spans are posted to (OTLP over HTTP/protobuf); None: the exporter's
    #: default, http://localhost:4318/v1/traces.
    otlp_endpoint: str | None = None
    service_name: str = "ivs-token-service"
    sampler: TraceSampler = TraceSampler.PARENT_BASED_ALWAYS_ON
    #: The share of traces kept by the ratio samplers.
    sampler_ratio: float = 1.0

    @property
    def enabled(self) -> bool:
        return bool(self.exporters)


@dataclass(frozen=True)
class Settings:
    """Every setting, grouped by the part of the service it configures."""

    mode: Mode = Mode.LOCAL
    auth: AuthSettings = field(default_factory=AuthSettings)
    admin_tokens: tuple[Secret, ...] = ()
    redis: RedisSettings = field(default_factory=RedisSettings)
    ivs: IvsSettings = field(default_factory=IvsSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    mapping: MappingSettings = field(default_factory=MappingSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    logging: LogSettings = field(default_factory=LogSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    #: Set by `serve --dev` only, never from the environment.
    dev: bool = False

    @property
    def redis_configured(self) -> bool:
        return self.redis.url is not None

    @property
    def demo_enabled(self) -> bool:
        return self.dev if self.http.demo_page is None else self.http.demo_page
