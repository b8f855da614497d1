"""Settings from a mapping (the environment), validated, every problem reported at once.

Only entry points read the real environment; everything else receives a `Settings`.
Secrets may be given as `<NAME>_FILE` (a path to a file holding the value), the way
Docker and Kubernetes secrets are mounted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from redis.asyncio.connection import parse_url

from token_service.admission.ratelimit import OnRedisError
from token_service.auth import (
    MAX_LEEWAY_SECONDS,
    MIN_ADMIN_TOKEN_CHARS,
    MIN_SECRET_BYTES,
    insecure_url_problem,
)
from token_service.config.secrets import Secret
from token_service.config.settings import (
    AuthSettings,
    HttpSettings,
    IvsSettings,
    KeySettings,
    LimitSettings,
    LogSettings,
    MappingSettings,
    PolicySettings,
    RedisSettings,
    ServerSettings,
    Settings,
    TracingSettings,
)
from token_service.domain import Rate
from token_service.errors import ConfigurationError
from token_service.http.access_log import ProbeLogging
from token_service.http.client_ip import ProxyHeader
from token_service.ivs.budget import BudgetOnRedisError
from token_service.ivs.stages import ENDPOINT_CACHE_MAX_SECONDS
from token_service.keys.store import KeyStoreKind
from token_service.observability.logs import LogFormat
from token_service.observability.tracing import TraceExporter, TraceSampler
from token_service.policy.identity import PSEUDONYM_SECRET_MIN_BYTES, UserIdMode
from token_service.tokens.mode import Mode

PREFIX = "TOKEN_SERVICE_"
#: Bounds of the connection timeouts: a keep-alive above the longest idle timeout a load
#: balancer allows (an ALB's: 4000 s); a head, body or stalled answer of minutes is an
#: attack or a broken client, never a request to this API.
MAX_KEEP_ALIVE_SECONDS = 7200
MAX_TRANSFER_SECONDS = 300
_T = TypeVar("_T")


class _Reader:
    """Reads typed values from the mapping, collecting every problem instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(PREFIX + name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def secret(self, name: str) -> Secret | None:
        direct = self.env.get(PREFIX + name)
        path = self.env.get(PREFIX + name + "_FILE")
        if direct and path:
            self.problems.append(f"{PREFIX}{name} and {PREFIX}{name}_FILE are both set: choose one")
            return None
        if path:
            try:
                # Mounted secrets usually end with a newline that is not part of the value.
                value = Path(path).read_text(encoding="utf-8").strip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                self.problems.append(
                    f"{PREFIX}{name}_FILE: cannot read {path!r}: {exc.__class__.__name__}"
                )
                return None
            if not value:
                self.problems.append(f"{PREFIX}{name}_FILE: {path!r} is empty")
                return None
            return Secret(value)
        if direct:
            return Secret(direct)
        return None

    def convert(self, name: str, default: _T, parse: Callable[[str], _T]) -> _T:
        text = self.raw(name)
        if text is None:
            return default
        try:
            return parse(text)
        except ValueError as exc:
            self.problems.append(f"{PREFIX}{name}: {exc}")
            return default

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        def parse(text: str) -> int:
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"expected a whole number, got {text!r}") from None
            if not low <= value <= high:
                raise ValueError(f"must be between {low} and {high}, got {value}")
            return value

        return self.convert(name, default, parse)

    def number(self, name: str, default: float, low: float, high: float) -> float:
        def parse(text: str) -> float:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {text!r}") from None
            if not low <= value <= high:
                raise ValueError(f"must be between {low} and {high}, got {value}")
            return value

        return self.convert(name, default, parse)

    def choice(self, name: str, default: _T, enum_type: Callable[[str], _T]) -> _T:
        def parse(text: str) -> _T:
            try:
                return enum_type(text.lower())
            except ValueError:
                options = ", ".join(str(m.value) for m in enum_type)  # type: ignore[attr-defined]
                raise ValueError(f"expected one of {options}, got {text!r}") from None

        return self.convert(name, default, parse)


def _url_problem(text: str, schemes: Iterable[str], *, needs_host: bool = True) -> str | None:
    """Why `text` is not a usable URL of one of `schemes`, or None. The message never
    repeats the URL: it may hold a password."""
    try:
        parts = urlsplit(text)
        port = parts.port  # parsing the port is what refuses `:notaport` and `:99999`
    except ValueError:
        return "not a valid URL (check the host, brackets around an IPv6 address, and the port)"
    if parts.scheme.lower() not in schemes or "://" not in text:
        return f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
    if needs_host and not parts.hostname:
        return "the URL names no host"
    if port == 0:
        return "the port must be between 1 and 65535"
    return None


def _url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        problem = _url_problem(text, schemes)
        if problem is not None:
            raise ValueError(problem)
        return text

    return parse


def _region(text: str) -> str:
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", text):
        raise ValueError(f"not an AWS region name: {text!r}")
    return text


def _account(text: str) -> str:
    if not re.fullmatch(r"\d{12}", text):
        raise ValueError("expected a 12-digit AWS account id")
    return text


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names, blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _algorithms(text: str) -> tuple[str, ...]:
    algorithms = tuple(a.strip() for a in text.split(",") if a.strip())
    if not algorithms:
        raise ValueError("expected a comma-separated list such as RS256")
    return algorithms


def _networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR network: {part!r}") from None
    return tuple(networks)


_ORIGIN_RE = re.compile(r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$")


def _origins(text: str) -> tuple[str, ...]:
    # Exact origins only: a wildcard would let any site's scripts spend users' tokens.
    origins = tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())
    for origin in origins:
        if not _ORIGIN_RE.fullmatch(origin):
            raise ValueError(
                f"{origin!r} is not an origin: expected scheme://host[:port] such as "
                "https://app.example.com, without a path or wildcard"
            )
    return origins


def _optional_boolean(text: str) -> bool | None:
    return _boolean(text)


def _boolean(text: str) -> bool:
    value = text.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


_DURATION_RE = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _interval(text: str) -> int | None:
    """`30d`, `12h`, `90m` or `45s` in seconds; `off` (or `0`) for none."""
    if text.lower() in {"off", "0", "none"}:
        return None
    match = _DURATION_RE.match(text.lower())
    if match is None:
        raise ValueError(f"expected a duration such as 30d, 12h, 90m or 45s, or off; got {text!r}")
    seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds < 1:
        raise ValueError("must be at least 1s")
    return seconds


def _retention(text: str) -> int:
    seconds = _interval(text)
    if seconds is None:
        raise ValueError("records must be kept for some time, e.g. 30d")
    return seconds


def _mapping_error(text: str) -> str:
    if text.lower() not in {"deny", "outbox"}:
        raise ValueError(f"expected deny or outbox, got {text!r}")
    return text.lower()


def _events_secret(r: _Reader) -> Secret | None:
    secret = r.secret("EVENTS_SECRET")
    if secret is not None and len(secret.reveal_bytes()) < 32:
        r.problems.append(f"{PREFIX}EVENTS_SECRET: must be at least 32 bytes")
    return secret


def _secret_prefix(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9/_+=.@-]{1,400}", text):
        raise ValueError("a Secrets Manager name prefix uses only A-Z a-z 0-9 / _ + = . @ -")
    return text


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _read_auth(r: _Reader) -> AuthSettings:
    defaults = AuthSettings()
    shared = r.secret("AUTH_SHARED_SECRET")
    if shared is not None and len(shared.reveal_bytes()) < MIN_SECRET_BYTES:
        r.problems.append(
            f"{PREFIX}AUTH_SHARED_SECRET: must be at least {MIN_SECRET_BYTES} bytes (HS256 "
            "needs a key as "
            "long as its hash); generate one with `openssl rand -base64 48`"
        )
    jwks_url = r.convert("AUTH_JWKS_URL", defaults.jwks_url, _url(("https", "http")))
    allow_insecure_jwks = r.convert(
        "AUTH_ALLOW_INSECURE_JWKS", defaults.allow_insecure_jwks, _boolean
    )
    insecure = insecure_url_problem(jwks_url) if jwks_url is not None else None
    if insecure is not None and not allow_insecure_jwks:
        r.problems.append(
            f"{PREFIX}AUTH_JWKS_URL: {insecure}; use https://, or set "
            f"{PREFIX}AUTH_ALLOW_INSECURE_JWKS=true for a provider on a network you trust"
        )
    issuer = r.raw("AUTH_ISSUER")
    audience = r.raw("AUTH_AUDIENCE")
    if jwks_url is not None and (issuer is None or audience is None):
        missing = [n for n, v in (("AUTH_ISSUER", issuer), ("AUTH_AUDIENCE", audience)) if not v]
        r.problems.extend(
            f"{PREFIX}{n}: required with {PREFIX}AUTH_JWKS_URL (tokens are checked for an "
            "exact issuer and audience)"
            for n in missing
        )
    return AuthSettings(
        shared_secret=shared,
        jwks_url=jwks_url,
        issuer=issuer,
        audience=audience,
        algorithms=r.convert("AUTH_ALGORITHMS", defaults.algorithms, _algorithms),
        user_id_claim=r.raw("AUTH_USER_ID_CLAIM") or defaults.user_id_claim,
        roles_claim=r.raw("AUTH_ROLES_CLAIM") or defaults.roles_claim,
        leeway_seconds=r.integer(
            "AUTH_LEEWAY_SECONDS", defaults.leeway_seconds, 0, MAX_LEEWAY_SECONDS
        ),
        jwks_refresh_seconds=r.integer(
            "AUTH_JWKS_REFRESH_SECONDS", defaults.jwks_refresh_seconds, 10, 86400
        ),
        authorized_parties=r.convert(
            "AUTH_AUTHORIZED_PARTIES", defaults.authorized_parties, _names
        ),
        allow_insecure_jwks=allow_insecure_jwks,
    )


def load_settings(env: Mapping[str, str], *, dev: bool = False) -> Settings:
    """Build `Settings` from `env`; raise `ConfigurationError` listing every problem."""
    r = _Reader(env)
    region_default = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    admin = r.secret("ADMIN_TOKENS")
    admin_tokens = (
        tuple(Secret(t.strip()) for t in admin.reveal().split(",") if t.strip()) if admin else ()
    )
    for index, token in enumerate(admin_tokens):
        if len(token.reveal()) < MIN_ADMIN_TOKEN_CHARS:
            r.problems.append(
                f"{PREFIX}ADMIN_TOKENS: token #{index + 1} is shorter than "
                f"{MIN_ADMIN_TOKEN_CHARS} characters"
            )
    defaults = Settings()
    user_id_mode = r.choice("USER_ID_MODE", defaults.policy.user_id_mode, UserIdMode)
    pseudonym_secret = r.secret("USER_ID_PSEUDONYM_SECRET")
    if user_id_mode is UserIdMode.PSEUDONYM:
        if pseudonym_secret is None:
            r.problems.append(
                f"{PREFIX}USER_ID_PSEUDONYM_SECRET: required when {PREFIX}USER_ID_MODE=pseudonym"
            )
        elif len(pseudonym_secret.reveal_bytes()) < PSEUDONYM_SECRET_MIN_BYTES:
            r.problems.append(
                f"{PREFIX}USER_ID_PSEUDONYM_SECRET: must be at least "
                f"{PSEUDONYM_SECRET_MIN_BYTES} bytes"
            )
    policy_file = r.convert("POLICY_FILE", defaults.policy.file, Path)
    if policy_file is not None and not policy_file.is_file():
        r.problems.append(f"{PREFIX}POLICY_FILE: {str(policy_file)!r} is not a readable file")
    redis = RedisSettings(
        url=_redis_url(r),
        timeout_seconds=r.number(
            "REDIS_TIMEOUT_SECONDS", defaults.redis.timeout_seconds, 0.005, 10
        ),
    )
    ivs = IvsSettings(
        endpoint_url=r.convert(
            "IVS_ENDPOINT_URL", defaults.ivs.endpoint_url, _url(("http", "https"))
        ),
        region=r.convert("AWS_REGION", _region_or_problem(r, region_default), _region),
        account_id=r.convert("AWS_ACCOUNT_ID", defaults.ivs.account_id, _account),
        connect_timeout_seconds=r.number(
            "IVS_CONNECT_TIMEOUT_SECONDS", defaults.ivs.connect_timeout_seconds, 0.1, 60
        ),
        read_timeout_seconds=r.number(
            "IVS_READ_TIMEOUT_SECONDS", defaults.ivs.read_timeout_seconds, 0.1, 120
        ),
        max_attempts=r.integer("IVS_MAX_ATTEMPTS", defaults.ivs.max_attempts, 1, 10),
        deadline_seconds=r.number("IVS_DEADLINE_SECONDS", defaults.ivs.deadline_seconds, 0.1, 120),
        token_rate=r.convert("IVS_TOKEN_RATE", defaults.ivs.token_rate, Rate.parse),
        token_max_wait_ms=r.integer(
            "IVS_TOKEN_MAX_WAIT_MS", defaults.ivs.token_max_wait_ms, 0, 10_000
        ),
        token_on_redis_error=r.choice(
            "IVS_TOKEN_ON_REDIS_ERROR", defaults.ivs.token_on_redis_error, BudgetOnRedisError
        ),
        fallback_to_local=r.convert(
            "IVS_FALLBACK_TO_LOCAL", defaults.ivs.fallback_to_local, _boolean
        ),
        stage_cache_seconds=r.integer(
            "STAGE_CACHE_SECONDS", defaults.ivs.stage_cache_seconds, 1, ENDPOINT_CACHE_MAX_SECONDS
        ),
        stage_not_found_cache_seconds=r.integer(
            "STAGE_NOT_FOUND_CACHE_SECONDS", defaults.ivs.stage_not_found_cache_seconds, 0, 3600
        ),
        lookup_rate=r.convert("IVS_LOOKUP_RATE", defaults.ivs.lookup_rate, Rate.parse),
        lookup_max_wait_ms=r.integer(
            "IVS_LOOKUP_MAX_WAIT_MS", defaults.ivs.lookup_max_wait_ms, 0, 10_000
        ),
        disconnect_rate=r.convert("IVS_DISCONNECT_RATE", defaults.ivs.disconnect_rate, Rate.parse),
    )
    keys = KeySettings(
        store=r.choice("KEY_STORE", defaults.keys.store, KeyStoreKind),
        dir=r.convert("KEYS_DIR", defaults.keys.dir, Path),
        read_only=r.convert("KEYS_READ_ONLY", defaults.keys.read_only, _boolean),
        secrets_prefix=r.convert(
            "KEY_SECRETS_PREFIX", defaults.keys.secrets_prefix, _secret_prefix
        ),
        secrets_kms_key_id=r.raw("KEY_SECRETS_KMS_KEY_ID"),
        secretsmanager_endpoint_url=r.convert(
            "SECRETSMANAGER_ENDPOINT_URL",
            defaults.keys.secretsmanager_endpoint_url,
            _url(("http", "https")),
        ),
        rotation_interval_seconds=r.convert(
            "KEY_ROTATION_INTERVAL", defaults.keys.rotation_interval_seconds, _interval
        ),
        refresh_seconds=r.number("KEY_REFRESH_SECONDS", defaults.keys.refresh_seconds, 0.1, 300),
        ivs_check_seconds=r.number(
            "KEY_IVS_CHECK_SECONDS", defaults.keys.ivs_check_seconds, 1, 86400
        ),
        delete_margin_seconds=r.integer(
            "KEY_DELETE_MARGIN_SECONDS", defaults.keys.delete_margin_seconds, 0, 86400
        ),
        reconcile_seconds=r.number(
            "KEY_RECONCILE_SECONDS", defaults.keys.reconcile_seconds, 1, 86400
        ),
    )
    policy = PolicySettings(
        file=policy_file,
        user_id_mode=user_id_mode,
        user_id_pseudonym_secret=pseudonym_secret,
    )
    limits = LimitSettings(
        user=r.convert("RATE_LIMIT_USER", defaults.limits.user, Rate.parse),
        ip=r.convert("RATE_LIMIT_IP", defaults.limits.ip, Rate.parse),
        stage=r.convert("RATE_LIMIT_STAGE", defaults.limits.stage, Rate.parse),
        on_redis_error=r.choice(
            "RATE_LIMIT_ON_REDIS_ERROR", defaults.limits.on_redis_error, OnRedisError
        ),
        admin_auth_failures=r.convert(
            "ADMIN_AUTH_FAILURE_RATE", defaults.limits.admin_auth_failures, Rate.parse
        ),
    )
    mapping = MappingSettings(
        retention_seconds=r.convert(
            "MAPPING_RETENTION", defaults.mapping.retention_seconds, _retention
        ),
        on_redis_error=r.convert(
            "MAPPING_ON_REDIS_ERROR", defaults.mapping.on_redis_error, _mapping_error
        ),
        events_secret=_events_secret(r),
    )
    http = HttpSettings(
        cors_origins=r.convert("CORS_ORIGINS", defaults.http.cors_origins, _origins),
        trusted_proxies=r.convert("TRUSTED_PROXIES", defaults.http.trusted_proxies, _networks),
        demo_page=r.convert("DEMO_PAGE", defaults.http.demo_page, _optional_boolean),
        demo_stage_arn=r.raw("DEMO_STAGE_ARN"),
        web_sdk_dir=r.convert("WEB_SDK_DIR", defaults.http.web_sdk_dir, Path),
        trusted_proxy_header=r.choice(
            "TRUSTED_PROXY_HEADER", defaults.http.trusted_proxy_header, ProxyHeader
        ),
    )
    logging = LogSettings(
        level=r.convert("LOG_LEVEL", defaults.logging.level, _log_level),
        format=r.choice("LOG_FORMAT", defaults.logging.format, LogFormat),
        access_log=r.convert("ACCESS_LOG", defaults.logging.access_log, _boolean),
        access_log_probes=r.choice(
            "ACCESS_LOG_PROBES", defaults.logging.access_log_probes, ProbeLogging
        ),
        access_log_probe_sample_rate=r.number(
            "ACCESS_LOG_PROBE_SAMPLE_RATE", defaults.logging.access_log_probe_sample_rate, 0, 1
        ),
    )
    settings = Settings(
        mode=r.choice("MODE", defaults.mode, Mode),
        auth=_read_auth(r),
        admin_tokens=admin_tokens,
        server=_read_server(r),
        dev=dev,
        redis=redis,
        ivs=ivs,
        keys=keys,
        policy=policy,
        limits=limits,
        mapping=mapping,
        http=http,
        logging=logging,
        tracing=_read_tracing(r),
    )
    if r.problems:
        raise ConfigurationError(r.problems)
    return settings


#: The OTLP protocol the image carries an exporter for (no gRPC stack in it).
OTLP_PROTOCOL = "http/protobuf"


def _otel(r: _Reader, name: str) -> str | None:
    """One of OpenTelemetry's own variables (no TOKEN_SERVICE_ prefix)."""
    value = r.env.get(name, "").strip()
    return value or None


def _otel_exporters(r: _Reader) -> tuple[TraceExporter, ...]:
    exporters: list[TraceExporter] = []
    for part in _names(_otel(r, "OTEL_TRACES_EXPORTER") or ""):
        try:
            exporter = TraceExporter(part.lower())
        except ValueError:
            options = ", ".join(e.value for e in TraceExporter)
            r.problems.append(f"OTEL_TRACES_EXPORTER: expected one of {options}, got {part!r}")
            continue
        if exporter is not TraceExporter.NONE and exporter not in exporters:
            exporters.append(exporter)
    return tuple(exporters)


def _otel_endpoint(r: _Reader) -> str | None:
    """Where spans are posted: the traces endpoint as given, or the shared one with the
    signal's path appended (as the specification says), checked as a URL."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = _otel(r, name)
        if protocol is not None:
            if protocol != OTLP_PROTOCOL:
                r.problems.append(f"{name}: only {OTLP_PROTOCOL} is supported, got {protocol!r}")
            break
    endpoint = _otel(r, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = _otel(r, "OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint is None and base is not None:
        endpoint = base.rstrip("/") + "/v1/traces"
    if endpoint is not None and (why := _url_problem(endpoint, ("http", "https"))) is not None:
        r.problems.append(f"OTEL_EXPORTER_OTLP_ENDPOINT: {why}")
        return None
    return endpoint


def _otel_sampler(r: _Reader, defaults: TracingSettings) -> tuple[TraceSampler, float]:
    sampler, ratio = defaults.sampler, defaults.sampler_ratio
    if (text := _otel(r, "OTEL_TRACES_SAMPLER")) is not None:
        try:
            sampler = TraceSampler(text.lower())
        except ValueError:
            options = ", ".join(s.value for s in TraceSampler)
            r.problems.append(f"OTEL_TRACES_SAMPLER: expected one of {options}, got {text!r}")
    if (text := _otel(r, "OTEL_TRACES_SAMPLER_ARG")) is not None:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if 0 <= value <= 1:
            ratio = value
        else:
            r.problems.append(
                f"OTEL_TRACES_SAMPLER_ARG: expected a number from 0 to 1, got {text!r}"
            )
    return sampler, ratio


def _read_tracing(r: _Reader) -> TracingSettings:
    """OpenTelemetry's own variables, as its SDK documents them; the OTLP exporter reads
    its other ones (headers, certificates, timeout) itself."""
    defaults = TracingSettings()
    if (_otel(r, "OTEL_SDK_DISABLED") or "").lower() == "true":
        return defaults
    sampler, ratio = _otel_sampler(r, defaults)
    return TracingSettings(
        exporters=_otel_exporters(r),
        otlp_endpoint=_otel_endpoint(r),
        service_name=_otel(r, "OTEL_SERVICE_NAME") or defaults.service_name,
        sampler=sampler,
        sampler_ratio=ratio,
    )


def _read_server(r: _Reader) -> ServerSettings:
    defaults = ServerSettings()
    port = r.integer("PORT", defaults.port, 1, 65535)
    admin_port = r.convert("ADMIN_PORT", None, _port)
    if admin_port is not None and admin_port == port:
        r.problems.append(f"{PREFIX}ADMIN_PORT: must differ from {PREFIX}PORT ({port})")
    return ServerSettings(
        host=r.raw("HOST") or defaults.host,
        port=port,
        workers=r.integer("WORKERS", defaults.workers, 1, 64),
        admin_port=admin_port,
        shutdown_timeout_seconds=r.integer(
            "SHUTDOWN_TIMEOUT_SECONDS", defaults.shutdown_timeout_seconds, 1, 3600
        ),
        keep_alive_seconds=r.integer(
            "HTTP_KEEP_ALIVE_SECONDS", defaults.keep_alive_seconds, 1, MAX_KEEP_ALIVE_SECONDS
        ),
        head_timeout_seconds=r.integer(
            "HTTP_HEAD_TIMEOUT_SECONDS",
            defaults.head_timeout_seconds,
            1,
            MAX_TRANSFER_SECONDS,
        ),
        body_timeout_seconds=r.integer(
            "HTTP_BODY_TIMEOUT_SECONDS",
            defaults.body_timeout_seconds,
            1,
            MAX_TRANSFER_SECONDS,
        ),
        send_timeout_seconds=r.integer(
            "HTTP_SEND_TIMEOUT_SECONDS",
            defaults.send_timeout_seconds,
            1,
            MAX_TRANSFER_SECONDS,
        ),
        metrics_public=r.convert("METRICS_PUBLIC", defaults.metrics_public, _optional_boolean),
        schema_public=r.convert("SCHEMA_PUBLIC", defaults.schema_public, _boolean),
    )


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"expected a port from 1 to 65535, got {text!r}")
    return int(text)


_REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")


def _redis_url(r: _Reader) -> Secret | None:
    # The URL may embed a password, so it is treated as a secret throughout: no problem
    # message repeats it.
    url = r.secret("REDIS_URL")
    if url is None:
        return None
    text = url.reveal()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    problem = _url_problem(text, _REDIS_SCHEMES, needs_host=scheme != "unix")
    if problem is None:
        try:
            # What the client will make of it: redis-py refuses some queries (a timeout
            # that is not a number, say) only when it parses the URL.
            parse_url(scheme.removesuffix("+cluster") + "://" + text.split("://", 1)[1])
        except ValueError:
            problem = "redis-py cannot read this URL (check its query parameters)"
    if problem is not None:
        if problem.startswith("expected"):
            problem = (
                "expected redis://, rediss:// or unix:// "
                "(redis+cluster:// or rediss+cluster:// for Redis Cluster)"
            )
        r.problems.append(f"{PREFIX}REDIS_URL: {problem}")
        return None
    return url


def _region_or_problem(r: _Reader, text: str) -> str:
    try:
        return _region(text)
    except ValueError as exc:
        r.problems.append(f"AWS_REGION: {exc}")
        return "us-east-1"


def check_can_serve(settings: Settings) -> None:
    """Refuse a production start that could not authenticate anyone."""
    problems: list[str] = []
    if not settings.auth.configured and not settings.dev:
        problems.append(
            "no app-user authentication configured: set "
            f"{PREFIX}AUTH_SHARED_SECRET (HS256) or {PREFIX}AUTH_JWKS_URL with "
            f"{PREFIX}AUTH_ISSUER and {PREFIX}AUTH_AUDIENCE (OIDC)"
        )
    if problems:
        raise ConfigurationError(problems)
