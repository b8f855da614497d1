"""An asynchronous cache of an OIDC provider's JSON Web Key Set.

PyJWT's `PyJWKClient` fetches with blocking `urllib` on the caller's thread, which
would stall the event loop for every request that misses its cache. This cache
fetches with the application's `httpx.AsyncClient` instead, and:

* refreshes in the background (`refresh_interval`), so requests normally never wait;
* re-fetches once when a token names an unknown `kid` (the provider rotated), at
  most once per `unknown_kid_cooldown`, with concurrent misses sharing one fetch,
  so a flood of tokens with random kids cannot turn into a flood at the provider;
  a request waits for that fetch `miss_wait` at most (a slow provider answers it
  401 quickly; the fetch goes on for the requests after it);
* keeps serving the last good key set while the endpoint is down, slow, or answers
  with garbage: a provider outage must not log every user out;
* if the very first fetch fails, keeps retrying in the background with capped
  exponential backoff and reports not-ready instead of crashing start-up.

Only keys meant for signatures are kept (`use` absent or `sig`, `key_ops` absent or
containing `verify`); symmetric (`oct`) keys are never taken from a JWKS, since a
published HMAC key would let anyone sign.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import httpx
import jwt

from token_service.errors import AuthenticationFailed, ConfigurationError, ServiceUnavailable
from token_service.infra.background import Spawn, cancel_all, native_spawner
from token_service.infra.urls import in_clear_to_remote
from token_service.observability.tracing import span

logger = logging.getLogger(__name__)

#: A JWKS is a few KiB; anything much larger is not one, and must not fill memory.
DEFAULT_MAX_BYTES: Final = 256 * 1024

#: Which token `alg` values may use a key of a given type (and curve): a key
#: without an `alg` member is only ever tried with one of these.
_RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS_BY_CURVE: Final[Mapping[str, frozenset[str]]] = {
    "P-256": frozenset({"ES256"}),
    "P-384": frozenset({"ES384"}),
    "P-521": frozenset({"ES512"}),
    "secp256k1": frozenset({"ES256K"}),
}
_OKP_CURVES: Final = frozenset({"Ed25519", "Ed448"})


def insecure_url_problem(url: str) -> str | None:
    """Why the key set may not be fetched from `url` without an explicit opt-in: plain
    `http://` to a host that is not loopback, where anyone on the network path can swap the
    keys and so sign a token for any user. None when the URL is safe to fetch."""
    if in_clear_to_remote(url, frozenset({"http"})):
        return (
            "plain http:// to a host that is not loopback: anyone on the network path could "
            "replace the signing keys and sign tokens for any user"
        )
    return None


def _compatible_algorithms(jwk: Mapping[str, Any]) -> frozenset[str]:
    kty = jwk.get("kty")
    if kty == "RSA":
        return _RSA_ALGORITHMS
    if kty == "EC":
        return _EC_ALGORITHMS_BY_CURVE.get(str(jwk.get("crv")), frozenset())
    if kty == "OKP" and jwk.get("crv") in _OKP_CURVES:
        return frozenset({"EdDSA"})
    return frozenset()  # `oct` and anything unknown: never usable from a JWKS


@dataclass
class _Key:
    """One usable key of the set, with its PyJWK objects built per algorithm on demand
    (a PyJWK is bound to one algorithm, and an RSA key without `alg` may serve
    several)."""

    kid: str | None
    jwk: dict[str, Any]
    algorithms: frozenset[str]
    _by_alg: dict[str, jwt.PyJWK] = field(default_factory=dict)

    def for_algorithm(self, alg: str) -> jwt.PyJWK:
        key = self._by_alg.get(alg)
        if key is None:
            key = jwt.PyJWK(self.jwk, algorithm=alg)
            self._by_alg[alg] = key
        return key


class _Lookup(enum.Enum):
    FOUND = enum.auto()
    UNKNOWN_KID = enum.auto()
    ALG_MISMATCH = enum.auto()


class _BadKeySetError(Exception):
    """The endpoint answered, but not with a usable key set."""


def _parse_jwks(body: bytes) -> tuple[_Key, ...]:
    """The usable signature keys of a JWKS document; `_BadKeySetError` if there are none."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _BadKeySetError("not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise _BadKeySetError("no 'keys' list")
    keys: list[_Key] = []
    for jwk in document["keys"]:
        key = _usable_key(jwk)
        if key is not None:
            keys.append(key)
    if not keys:
        # An empty set is far more likely a provider mishap than "trust nobody";
        # keeping the previous set is the safer reading.
        raise _BadKeySetError("no usable signature keys")
    return tuple(keys)


def _signature_algorithms(jwk: Mapping[str, Any]) -> frozenset[str]:
    """The token algorithms this JWK may verify; empty if it is not a signature key."""
    if jwk.get("use", "sig") != "sig":
        return frozenset()
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return frozenset()
    algorithms = _compatible_algorithms(jwk)
    declared = jwk.get("alg")
    if declared is None:
        return algorithms
    # A declared `alg` pins the key to exactly that algorithm (RFC 7517 sec. 4.4).
    return frozenset({declared}) if declared in algorithms else frozenset()


def _usable_key(jwk: object) -> _Key | None:
    if not isinstance(jwk, dict):
        return None
    kid = jwk.get("kid")
    algorithms = _signature_algorithms(jwk)
    if (kid is not None and not isinstance(kid, str)) or not algorithms:
        return None
    key = _Key(kid=kid, jwk=jwk, algorithms=algorithms)
    try:
        # Build one PyJWK now: a malformed or too weak key is dropped at fetch time,
        # not discovered on a user's request.
        probe = key.for_algorithm(min(algorithms))
    except jwt.PyJWTError:
        logger.warning("JWKS key %r ignored: not a valid key", kid)
        return None
    if probe.Algorithm.check_key_length(probe.key) is not None:
        logger.warning("JWKS key %r ignored: below the minimum key length", kid)
        return None
    return key


class JwksCache:
    """The signing keys of one OIDC provider, fetched from `url` with `http`.

    Call `await start()` once (it never raises for a provider problem) and
    `await close()` on shutdown. A plain `http://` URL to a host that is not loopback is
    refused unless `allow_insecure` (`insecure_url_problem`).
    """

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        refresh_interval: float = 600,
        unknown_kid_cooldown: float = 30,
        retry_initial: float = 1,
        retry_max: float = 60,
        fetch_timeout: float = 10,
        miss_wait: float = 2,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
        allow_insecure: bool = False,
    ) -> None:
        problems: list[str] = []
        if not url.startswith(("https://", "http://")):
            problems.append("JWKS URL must be an http(s) URL")
        elif not allow_insecure and (insecure := insecure_url_problem(url)) is not None:
            problems.append(f"JWKS URL: {insecure}")
        for name, value in (
            ("refresh_interval", refresh_interval),
            ("retry_initial", retry_initial),
            ("retry_max", retry_max),
            ("fetch_timeout", fetch_timeout),
            ("miss_wait", miss_wait),
        ):
            if value <= 0:
                problems.append(f"{name} must be positive")
        if unknown_kid_cooldown < 0:
            problems.append("unknown_kid_cooldown must not be negative")
        if max_bytes <= 0:
            problems.append("max_bytes must be positive")
        if problems:
            raise ConfigurationError(problems)
        self._url = url
        self._http = http
        self._refresh_interval = refresh_interval
        self._cooldown = unknown_kid_cooldown
        self._retry_initial = retry_initial
        self._retry_max = min(retry_max, refresh_interval)
        self._fetch_timeout = fetch_timeout
        self._miss_wait = miss_wait
        self._max_bytes = max_bytes
        self._clock = clock
        # Jitter spreads replicas' refreshes; it needs no unpredictability.
        self._random = random.Random()  # noqa: S311 - jitter, not security
        self._keys: tuple[_Key, ...] | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self._last_miss_fetch: float | None = None
        self._refreshers: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self._fetches = 0
        self._last_success: datetime | None = None
        self._last_error: str | None = None

    def __repr__(self) -> str:
        return f"JwksCache(url={self._url!r}, ready={self.ready})"

    # -- state for readiness and operators -------------------------------------------

    @property
    def url(self) -> str:
        return self._url

    @property
    def ready(self) -> bool:
        """True once a key set has been loaded (it stays loaded while the provider is
        down: the last good set keeps serving)."""
        return self._keys is not None

    @property
    def last_success(self) -> datetime | None:
        """When the key set was last fetched successfully (UTC), None if never."""
        return self._last_success

    @property
    def last_error(self) -> str | None:
        """Why the latest fetch failed, None if it succeeded (safe to log and show)."""
        return self._last_error

    @property
    def fetch_count(self) -> int:
        """Fetches attempted so far (for metrics, and for tests counting provider load)."""
        return self._fetches

    @property
    def key_ids(self) -> tuple[str | None, ...]:
        return tuple(key.kid for key in self._keys or ())

    # -- lifecycle -------------------------------------------------------------------

    async def start(self, spawn: Spawn | None = None) -> None:
        """First fetch, then background refreshing. A failed first fetch is not an
        error here: the background task keeps retrying and `ready` says False."""
        if self._started or self._closed:
            return
        self._started = True
        ok = await self._shared_fetch()
        (spawn or native_spawner(self._refreshers))(self._refresh_loop(failures=0 if ok else 1))

    async def close(self) -> None:
        self._closed = True
        await cancel_all(self._refreshers)
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await inflight

    async def refresh(self) -> bool:
        """Fetch now (joining a fetch already under way); True if the set was updated."""
        return await self._shared_fetch()

    # -- lookups ---------------------------------------------------------------------

    async def get_signing_key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key named `kid`, bound to the token's `alg`.

        Raises AuthenticationFailed("unknown signing key") when no such key exists
        even after the permitted re-fetch, AuthenticationFailed when the key's own
        `alg` (or type) does not allow `alg`, and ServiceUnavailable when no key set
        has ever been loaded (a provider problem, not the caller's).
        """
        outcome, key = self._lookup(kid, alg)
        if outcome is _Lookup.UNKNOWN_KID and self._may_fetch_for_miss():
            # A slow provider must not hold the request for the whole fetch timeout:
            # it waits `miss_wait` at most, and the fetch goes on (shielded) for the
            # requests after it.
            fetch = self._fetch_task()  # now, so the misses right after join it
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._miss_wait):
                    await asyncio.shield(fetch)
            outcome, key = self._lookup(kid, alg)
        if key is not None:
            return key
        if outcome is _Lookup.ALG_MISMATCH:
            raise AuthenticationFailed("algorithm does not match the signing key")
        if self._keys is None:
            raise ServiceUnavailable(
                "identity provider signing keys are not available yet", retry_after=5
            )
        raise AuthenticationFailed("unknown signing key")

    def _lookup(self, kid: str | None, alg: str) -> tuple[_Lookup, jwt.PyJWK | None]:
        keys = self._keys or ()
        if kid is None:
            # Some providers omit `kid` when they publish a single key; with more
            # than one, guessing would mean trying keys the token did not name.
            candidates: tuple[_Key, ...] = keys if len(keys) == 1 else ()
        else:
            candidates = tuple(key for key in keys if key.kid == kid)
        if not candidates:
            return _Lookup.UNKNOWN_KID, None
        for key in candidates:
            if alg in key.algorithms:
                try:
                    return _Lookup.FOUND, key.for_algorithm(alg)
                except jwt.PyJWTError:
                    continue
        return _Lookup.ALG_MISMATCH, None

    def _may_fetch_for_miss(self) -> bool:
        if self._closed:
            return False
        if self._inflight is not None and not self._inflight.done():
            return True  # joining a fetch under way costs the provider nothing
        now = self._clock()
        if self._last_miss_fetch is not None and now - self._last_miss_fetch < self._cooldown:
            return False
        self._last_miss_fetch = now
        return True

    # -- fetching --------------------------------------------------------------------

    def _fetch_task(self) -> asyncio.Task[bool]:
        """The fetch under way, or a new one, so concurrent callers share it."""
        task = self._inflight
        if task is None or task.done():
            task = asyncio.create_task(self._fetch(), name="jwks-fetch")
            self._inflight = task
        return task

    async def _shared_fetch(self) -> bool:
        """Run one fetch, or join the one under way."""
        # shield: a request cancelled while waiting must not cancel the fetch that
        # other requests (and the refresher) are waiting on too.
        return await asyncio.shield(self._fetch_task())

    async def _fetch(self) -> bool:
        self._fetches += 1
        try:
            # A child of the request that started the fetch (its task copied the context),
            # or a trace of its own for the refresher's.
            with span("jwks.fetch", {"url.full": self._url}):
                keys = _parse_jwks(await self._download())
        except (httpx.HTTPError, _BadKeySetError) as exc:
            self._record_failure(_describe(exc))
            return False
        except Exception:
            # Anything else (a bug, an odd client error) is still just one failed
            # fetch: it must not reach the requests that joined this fetch, nor stop
            # the refresher, and the last good set keeps serving.
            logger.exception("JWKS fetch from %s failed unexpectedly", self._url)
            self._record_failure("unexpected error")
            return False
        self._keys = keys
        self._last_success = datetime.now(UTC)
        self._last_error = None
        logger.info("JWKS loaded from %s: %d key(s)", self._url, len(keys))
        return True

    def _record_failure(self, reason: str) -> None:
        self._last_error = reason
        if self._keys is not None:
            logger.warning(
                "JWKS fetch from %s failed (%s); keeping the last good key set", self._url, reason
            )
        else:
            logger.error("JWKS fetch from %s failed (%s); no keys loaded yet", self._url, reason)

    async def _download(self) -> bytes:
        async with self._http.stream(
            "GET",
            self._url,
            headers={"Accept": "application/jwk-set+json, application/json"},
            timeout=self._fetch_timeout,
            # Only the configured URL is trusted: a redirect (to http://, to another host)
            # would fetch keys from somewhere the start-up check never saw.
            follow_redirects=False,
        ) as response:
            if response.status_code != httpx.codes.OK:
                raise _BadKeySetError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self._max_bytes:
                    raise _BadKeySetError(f"larger than {self._max_bytes} bytes")
            return bytes(body)

    async def _refresh_loop(self, failures: int) -> None:
        while not self._closed:
            if failures == 0:
                delay = self._refresh_interval * self._random.uniform(0.9, 1.0)
            else:
                backoff = self._retry_initial * 2 ** min(failures - 1, 30)
                delay = min(self._retry_max, backoff) * self._random.uniform(0.5, 1.0)
            await asyncio.sleep(delay)
            ok = await self._shared_fetch()  # never raises for a provider problem
            failures = 0 if ok else failures + 1


def _describe(exc: Exception) -> str:
    if isinstance(exc, _BadKeySetError):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.TransportError):
        return f"unreachable ({type(exc).__name__})"
    return type(exc).__name__
