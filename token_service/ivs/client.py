"""The boto3 `ivs-realtime` adapter: one shared client, calls off the event loop.

Every SDK error is turned into a domain error here, so nothing above this module
knows botocore exists. The client is built once (boto3 clients are thread-safe,
sessions are not) with explicit connect and read timeouts, and its connection pool
is sized to the worker threads that call it. Retries are this module's: a bounded
number of attempts under one deadline per call (`RetryPolicy`), each attempt of a
paced operation (CreateParticipantToken) taking a slot of the IVS budget first.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from token_service.errors import (
    Conflict,
    DomainError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    StageNotFound,
    UpstreamFailed,
    UpstreamTimeout,
)

if TYPE_CHECKING:
    from mypy_boto3_ivs_realtime import IvsrealtimeClient

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Worker threads for IVS calls; the HTTP connection pool gets the same size.
DEFAULT_WORKERS = 16
#: Readiness probes are frequent and must answer quickly.
PING_DEADLINE_SECONDS = 3.0


@dataclass(frozen=True)
class StageInfo:
    arn: str
    stage_id: str
    events_url: str
    whip_url: str


@dataclass(frozen=True)
class PublicKeyInfo:
    arn: str
    name: str
    fingerprint: str
    material: str | None = None


@dataclass(frozen=True)
class IvsToken:
    participant_id: str
    token: str
    user_id: str
    duration_minutes: int
    expires_at: datetime | None
    capabilities: tuple[str, ...]
    attributes: Mapping[str, str]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one IVS call tries: total attempts, and one deadline over all of them.

    Retries happen here, not in botocore (whose client makes exactly one attempt):
    so every CreateParticipantToken attempt takes a slot of the IVS budget first, the
    backoff sleeps on the event loop instead of holding a worker thread, and the
    deadline bounds attempts, backoff and budget waits together.
    """

    max_attempts: int = 3
    deadline_seconds: float = 8.0
    backoff_base_seconds: float = 0.05
    backoff_max_seconds: float = 1.0

    def backoff(self, attempt: int, *, throttled: bool) -> float:
        """Full-jitter exponential backoff before attempt `attempt + 1`."""
        base = self.backoff_base_seconds * (4 if throttled else 1)
        cap = min(self.backoff_max_seconds, base * 2 ** (attempt - 1))
        # Not for security: only spreads retries of concurrent callers apart.
        return random.uniform(0, cap)  # noqa: S311


class Pacer(Protocol):
    """Paces calls of one operation (the IVS token budget): waits, or raises a DomainError.

    `acquire` returns once the call may go out, with the `time.monotonic()` moment
    by which it must have gone out (None: no such moment): a call sent later than
    its slot bunches up against the calls sent on time after it.
    """

    async def acquire(self, limit: float | None = None) -> float | None: ...


class _MissedSlot(Exception):
    """The worker thread started the call too long after its slot: take a new one."""


#: How often one call may give back a slot it missed before it gives up (503).
MAX_MISSED_SLOTS = 3


def build_client(
    *,
    region: str,
    endpoint_url: str | None,
    connect_timeout: float,
    read_timeout: float,
    pool_size: int = DEFAULT_WORKERS,
) -> IvsrealtimeClient:
    """The one boto3 client of the process (credentials from boto3's normal chain).

    One attempt per botocore call: `Ivs` owns the retries (see `RetryPolicy`).
    """
    config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=pool_size,
        # Every request is small and answered at once; keep-alive reuses connections.
        tcp_keepalive=True,
    )
    session = boto3.session.Session()
    return session.client("ivs-realtime", endpoint_url=endpoint_url, config=config)


def _error_code(exc: ClientError) -> str:
    error: Mapping[str, Any] = exc.response.get("Error", {})
    return str(error.get("Code", "Unknown"))


def _error_message(exc: ClientError) -> str:
    error: Mapping[str, Any] = exc.response.get("Error", {})
    # IVS's own message is safe to pass on: it describes the request, never a secret.
    return str(error.get("Message") or _error_code(exc))


def _status(exc: ClientError) -> int:
    metadata: Mapping[str, Any] = exc.response.get("ResponseMetadata", {})
    return int(metadata.get("HTTPStatusCode") or 0)


_THROTTLING = frozenset({"ThrottlingException", "TooManyRequestsException"})
_DENIED_HINTS = {
    "AccessDeniedException": (
        "the service's AWS credentials may not call it: grant ivs:{op} "
        "(docs/ivs-mode.md, 'The IAM policy', lists what each mode needs)"
    ),
    "PendingVerification": (
        "the AWS account is pending verification for IVS: contact AWS Support; "
        "nothing this service does will fix it"
    ),
}


class IvsThrottled(ServiceUnavailable):
    """IVS throttled (or refused on quota) even after the retries: 503, try again later."""

    code = "ivs-throttled"
    title = "IVS is at capacity"


def outcome_of(exc: Exception) -> str:
    """A bounded metric label for a failed attempt."""
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code in _THROTTLING:
            return "throttled"
        return {
            "ServiceQuotaExceededException": "quota_exceeded",
            "ResourceNotFoundException": "not_found",
            "ValidationException": "invalid",
            "ConflictException": "conflict",
            "AccessDeniedException": "denied",
            "PendingVerification": "denied",
        }.get(code, "server_error" if _status(exc) >= 500 else "client_error")
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return "timeout"
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return "unreachable"
    return "failed"


def _retryable(exc: Exception, operation: str, *, repeatable: bool) -> bool:
    """Whether another attempt may succeed (and may be made at all)."""
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        # Not executed: safe to repeat whatever the operation.
        if code in _THROTTLING:
            return True
        if code == "ServiceQuotaExceededException":
            # For token creation it is the request rate; elsewhere a count no wait fixes.
            return operation == "CreateParticipantToken"
        return repeatable and _status(exc) >= 500
    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError):
        return True  # the request never left
    # Sent, answer lost: it may have taken effect.
    return repeatable and isinstance(exc, ReadTimeoutError | HTTPClientError)


def translate(exc: Exception, operation: str) -> DomainError:  # noqa: PLR0911 - one table
    """Map an SDK exception to the domain error the HTTP edge knows how to report.

    Only IVS's message of a ValidationException or a not-found reaches the client
    (it describes the request); every other answer body stays in the log.
    """
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        message = _error_message(exc)
        if code == "ResourceNotFoundException":
            return NotFound(f"IVS {operation}: {message}")
        if code == "ValidationException":
            return InvalidRequest(f"IVS rejected the request: {message}")
        if code == "ConflictException":
            return Conflict(f"IVS {operation}: {message}")
        if code in _THROTTLING:
            return IvsThrottled(f"IVS is throttling {operation}; retry shortly", retry_after=1)
        if code == "ServiceQuotaExceededException":
            return IvsThrottled(f"IVS quota exceeded for {operation}; retry later", retry_after=5)
        if code in _DENIED_HINTS:
            log.error(
                "IVS refused %s with %s: %s",
                operation,
                code,
                _DENIED_HINTS[code].format(op=operation),
                extra={"event": "ivs_denied", "operation": operation, "awsError": code},
            )
            return UpstreamFailed(f"IVS refused {operation} ({code}); the operator has been told")
        log.warning(
            "IVS %s failed with %s (HTTP %s)",
            operation,
            code,
            _status(exc),
            extra={"event": "ivs_failed", "operation": operation, "awsError": code},
        )
        return UpstreamFailed(f"IVS {operation} failed ({code})")
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return UpstreamTimeout(f"IVS did not answer {operation} in time", retry_after=1)
    if isinstance(exc, EndpointConnectionError):
        return ServiceUnavailable(f"IVS is unreachable for {operation}", retry_after=2)
    if isinstance(exc, BotoCoreError):
        log.warning("IVS %s failed: %s", operation, exc.__class__.__name__)
        return UpstreamFailed(f"IVS {operation} failed ({exc.__class__.__name__})")
    raise exc


class IvsOverloaded(ServiceUnavailable):
    """This process could not send a paced call in its turn, repeatedly (503)."""

    code = "overloaded"
    title = "Service overloaded"


def _on_time(fn: Callable[[], _T], send_by: float | None) -> Callable[[], _T]:
    if send_by is None:
        return fn

    def call() -> _T:
        # Checked in the worker thread, right before the request is built and sent.
        if time.monotonic() > send_by:
            raise _MissedSlot
        return fn()

    return call


async def _within(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[_T], seconds: float
) -> _T:
    """`await future`, or `TimeoutError` after `seconds` (the future is then cancelled).

    What `asyncio.timeout` does around one future, with a TimerHandle alone: no Timeout
    object and no task lookups on the way in and out (2 µs less per IVS call, warm). A
    cancellation of the waiting task itself stays a cancellation.
    """
    expired = False

    def expire() -> None:
        nonlocal expired
        if not future.done():
            expired = True
            future.cancel()

    handle = loop.call_later(seconds, expire)
    try:
        return await future
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if expired and (task is None or task.cancelling() == 0):
            raise TimeoutError from None
        raise
    finally:
        handle.cancel()


class Ivs:
    """Async facade over the shared client; each attempt runs in the adapter's thread pool.

    `pacers` pace operations by name (the CreateParticipantToken budget): each attempt
    of such an operation first takes a slot. `on_call(operation, outcome)` is told of
    every attempt, for metrics.
    """

    def __init__(
        self,
        client: IvsrealtimeClient,
        workers: int = DEFAULT_WORKERS,
        *,
        retry: RetryPolicy | None = None,
        pacers: Mapping[str, Pacer] | None = None,
        on_call: Callable[[str, str], None] | None = None,
    ) -> None:
        self._client = client
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ivs")
        self._retry = retry or RetryPolicy()
        self._pacers = dict(pacers or {})
        self._on_call = on_call

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _record(self, operation: str, outcome: str) -> None:
        if self._on_call is not None:
            self._on_call(operation, outcome)

    def _deadline_passed(
        self, operation: str, last_failure: ClientError | BotoCoreError | None = None
    ) -> DomainError:
        """The deadline ended the call. When IVS already answered an earlier attempt
        with an error (throttled, failed), that answer is the truth the client gets:
        the retry it could not finish in time says nothing new about IVS."""
        self._record(operation, "deadline")
        if last_failure is not None:
            return translate(last_failure, operation)
        return UpstreamTimeout(f"IVS did not answer {operation} in time", retry_after=1)

    async def _call(
        self,
        operation: str,
        fn: Callable[[], _T],
        *,
        repeatable: bool = True,
        max_attempts: int | None = None,
        deadline_seconds: float | None = None,
    ) -> _T:
        loop = asyncio.get_running_loop()
        policy = self._retry
        attempts = max_attempts or policy.max_attempts
        deadline = loop.time() + (deadline_seconds or policy.deadline_seconds)
        pacer = self._pacers.get(operation)
        attempt = missed = 0
        last_failure: ClientError | BotoCoreError | None = None
        while True:
            attempt += 1
            send_by = None if pacer is None else await pacer.acquire(deadline - loop.time())
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._deadline_passed(operation, last_failure)
            try:
                # In the caller's context (as asyncio.to_thread does): the botocore span is
                # then a child of the request's, and log lines keep its ids. Submitted and
                # wrapped as `run_in_executor` does, without its checks that `fn` is no
                # coroutine function (inspect's, on every call).
                submitted = self._pool.submit(contextvars.copy_context().run, _on_time(fn, send_by))
                result = await _within(loop, asyncio.wrap_future(submitted, loop=loop), remaining)
            except _MissedSlot:
                # Busy event loop or thread pool: the slot passed unused, which only
                # leaves the budget more room. Not an attempt: nothing was sent.
                self._record(operation, "missed_slot")
                missed += 1
                if missed > MAX_MISSED_SLOTS:
                    raise IvsOverloaded(
                        f"too busy to send {operation} in its turn; retry shortly", retry_after=1
                    ) from None
                attempt -= 1
                continue
            except TimeoutError:
                # The worker thread finishes on its own, bounded by the read timeout.
                raise self._deadline_passed(operation, last_failure) from None
            except (ResponseParserError, AttributeError, TypeError, ValueError) as exc:
                # botocore could not even parse the answer (a JSON list, a string, HTML
                # from a proxy): IVS failed, not us. The type only: never the answer.
                log.error(  # noqa: TRY400
                    "IVS %s answered something botocore cannot read (%s)",
                    operation,
                    exc.__class__.__name__,
                    extra={"event": "ivs_malformed_answer", "operation": operation},
                )
                self._record(operation, "malformed")
                raise UpstreamFailed(
                    f"IVS answered {operation} with a malformed response"
                ) from None
            except (ClientError, BotoCoreError) as exc:
                last_failure = exc
                self._record(operation, outcome_of(exc))
                if attempt < attempts and _retryable(exc, operation, repeatable=repeatable):
                    delay = policy.backoff(attempt, throttled=outcome_of(exc) == "throttled")
                    if loop.time() + delay < deadline:
                        await asyncio.sleep(delay)
                        continue
                raise translate(exc, operation) from None
            self._record(operation, "ok")
            return result

    async def ping(self) -> None:
        """A cheap authenticated call, for readiness: proves endpoint and credentials work."""
        # One attempt, briefly: a probe that retries would hide the failure it looks for.
        await self._call(
            "ListStages",
            lambda: self._client.list_stages(maxResults=1),
            max_attempts=1,
            deadline_seconds=PING_DEADLINE_SECONDS,
        )

    async def get_stage(self, arn: str) -> StageInfo:
        try:
            response = await self._call("GetStage", lambda: self._client.get_stage(arn=arn))
        except NotFound:
            raise StageNotFound(f"stage {arn} does not exist") from None
        stage = _read("GetStage", response, lambda r: r["stage"])
        endpoints = _read("GetStage", stage, lambda s: s.get("endpoints") or {})
        events, whip = endpoints.get("events"), endpoints.get("whip")
        if not isinstance(events, str) or not isinstance(whip, str) or not events or not whip:
            raise UpstreamFailed(f"IVS returned stage {arn} without events/whip endpoints")
        return StageInfo(
            arn=_read("GetStage", stage, lambda s: _text(s, "arn")),
            stage_id=arn.rsplit("/", 1)[-1],
            events_url=events,
            whip_url=whip,
        )

    async def import_public_key(self, pem: str, name: str) -> PublicKeyInfo:
        def call() -> Any:
            try:
                return self._client.import_public_key(publicKeyMaterial=pem, name=name)
            except ClientError as exc:
                # Here the quota is the three-keys limit, which waiting will not fix.
                if _error_code(exc) == "ServiceQuotaExceededException":
                    raise _KeyQuotaFullError from None
                raise

        try:
            # Not repeated once sent: a second import of the same key is a conflict.
            response = await self._call("ImportPublicKey", call, repeatable=False)
        except _KeyQuotaFullError:
            raise Conflict(
                "IVS already holds 3 public keys in this region (its fixed limit); delete one "
                "that this service does not use (aws ivs-realtime list-public-keys)"
            ) from None
        return _read("ImportPublicKey", response, lambda r: _key_info(r["publicKey"]))

    async def get_public_key(self, arn: str) -> PublicKeyInfo:
        response = await self._call("GetPublicKey", lambda: self._client.get_public_key(arn=arn))
        return _read("GetPublicKey", response, lambda r: _key_info(r["publicKey"]))

    async def list_public_keys(self) -> list[PublicKeyInfo]:
        keys: list[PublicKeyInfo] = []
        token: str | None = None
        while True:
            page_token = token

            def page(t: str | None = page_token) -> Any:
                if t:
                    return self._client.list_public_keys(maxResults=100, nextToken=t)
                return self._client.list_public_keys(maxResults=100)

            response = await self._call("ListPublicKeys", page)
            keys.extend(
                _read(
                    "ListPublicKeys",
                    response,
                    lambda r: [
                        PublicKeyInfo(arn=_text(k, "arn"), name=k.get("name", ""), fingerprint="")
                        for k in r.get("publicKeys", [])
                    ],
                )
            )
            token = response.get("nextToken")
            if not token:
                return keys

    async def delete_public_key(self, arn: str) -> None:
        await self._call(
            "DeletePublicKey", lambda: self._client.delete_public_key(arn=arn), repeatable=False
        )

    async def create_participant_token(
        self,
        *,
        stage_arn: str,
        user_id: str,
        duration_minutes: int,
        capabilities: tuple[str, ...],
        attributes: Mapping[str, str],
    ) -> IvsToken:
        def call() -> Any:
            return self._client.create_participant_token(
                stageArn=stage_arn,
                userId=user_id,
                duration=duration_minutes,
                capabilities=list(capabilities),  # type: ignore[arg-type]
                attributes=dict(attributes),
            )

        try:
            response = await self._call("CreateParticipantToken", call)
        except NotFound:
            raise StageNotFound(f"stage {stage_arn} does not exist") from None

        def read(answer: Any) -> IvsToken:
            token = answer["participantToken"]
            return IvsToken(
                participant_id=_text(token, "participantId"),
                token=_text(token, "token"),
                user_id=token.get("userId", user_id),
                duration_minutes=token.get("duration", duration_minutes),
                expires_at=token.get("expirationTime"),
                capabilities=tuple(token.get("capabilities", capabilities)),
                attributes=token.get("attributes", dict(attributes)),
            )

        return _read("CreateParticipantToken", response, read)

    async def disconnect_participant(
        self, stage_arn: str, participant_id: str, reason: str
    ) -> None:
        await self._call(
            "DisconnectParticipant",
            lambda: self._client.disconnect_participant(
                stageArn=stage_arn, participantId=participant_id, reason=reason
            ),
            repeatable=False,
        )


class _KeyQuotaFullError(Exception):
    """ImportPublicKey hit the three-keys-per-region limit."""


def _read(operation: str, answer: Any, read: Callable[[Any], _T]) -> _T:
    """What `read` takes from an IVS answer. An answer without it, or of another shape (seen
    when an endpoint in front of IVS failed), is IVS failing: a 502 and a log line naming the
    operation, never a 500. Nothing of the answer is logged (it may hold a token)."""
    try:
        return read(answer)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # The exception's type only: a message or traceback could quote the answer.
        log.error(  # noqa: TRY400
            "IVS %s answered without the expected fields (%s)",
            operation,
            exc.__class__.__name__,
            extra={"event": "ivs_malformed_answer", "operation": operation},
        )
        raise UpstreamFailed(f"IVS answered {operation} with a malformed response") from None


def _text(fields: Mapping[str, Any], name: str) -> str:
    """A field that must be a non-empty string."""
    value = fields[name]
    if not isinstance(value, str) or not value:
        raise ValueError(name)
    return value


def _key_info(key: Mapping[str, Any]) -> PublicKeyInfo:
    return PublicKeyInfo(
        arn=_text(key, "arn"),
        name=str(key.get("name", "")),
        fingerprint=str(key.get("fingerprint", "")),
        material=key.get("publicKeyMaterial"),
    )
