"""The boto3 `ivs-realtime` adapter: one shared client, calls off the event loop.

Every SDK error is turned into a domain error here, so nothing above this module
knows botocore exists. The client is built once (boto3 clients are thread-safe,
sessions are not) with explicit timeouts and a bounded retry budget, and its
connection pool is sized to the worker threads that call it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

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


def build_client(
    *,
    region: str,
    endpoint_url: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
    pool_size: int = DEFAULT_WORKERS,
) -> IvsrealtimeClient:
    """The one boto3 client of the process (credentials from boto3's normal chain)."""
    config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=pool_size,
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


def translate(exc: Exception, operation: str) -> DomainError:  # noqa: PLR0911 - one table
    """Map an SDK exception to the domain error the HTTP edge knows how to report."""
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        message = _error_message(exc)
        if code == "ResourceNotFoundException":
            return NotFound(f"IVS {operation}: {message}")
        if code == "ValidationException":
            return InvalidRequest(f"IVS rejected the request: {message}")
        if code == "ConflictException":
            return Conflict(f"IVS {operation}: {message}")
        if code in {"ThrottlingException", "TooManyRequestsException"}:
            return ServiceUnavailable(f"IVS is throttling {operation}", retry_after=1)
        if code == "ServiceQuotaExceededException":
            return ServiceUnavailable(f"IVS quota exceeded for {operation}: {message}", 5)
        if code in {"AccessDeniedException", "PendingVerification"}:
            log.error(
                "IVS denied %s (%s): check the IAM policy and account verification",
                operation,
                code,
            )
            return UpstreamFailed(f"IVS refused {operation} ({code})")
        log.warning("IVS %s failed with %s", operation, code)
        return UpstreamFailed(f"IVS {operation} failed ({code})")
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return UpstreamTimeout(f"IVS did not answer {operation} in time", retry_after=1)
    if isinstance(exc, EndpointConnectionError):
        return ServiceUnavailable(f"IVS is unreachable for {operation}", retry_after=2)
    if isinstance(exc, BotoCoreError):
        log.warning("IVS %s failed: %s", operation, exc.__class__.__name__)
        return UpstreamFailed(f"IVS {operation} failed ({exc.__class__.__name__})")
    raise exc


class Ivs:
    """Async facade over the shared client; each call runs in the adapter's thread pool."""

    def __init__(self, client: IvsrealtimeClient, workers: int = DEFAULT_WORKERS) -> None:
        self._client = client
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ivs")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    async def _call(self, operation: str, fn: Callable[[], _T]) -> _T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, operation) from None

    async def ping(self) -> None:
        """A cheap authenticated call, for readiness: proves endpoint and credentials work."""
        await self._call("ListStages", lambda: self._client.list_stages(maxResults=1))

    async def get_stage(self, arn: str) -> StageInfo:
        try:
            response = await self._call("GetStage", lambda: self._client.get_stage(arn=arn))
        except NotFound:
            raise StageNotFound(f"stage {arn} does not exist") from None
        stage = response["stage"]
        endpoints = stage.get("endpoints", {})
        events, whip = endpoints.get("events"), endpoints.get("whip")
        if not events or not whip:
            raise UpstreamFailed(f"IVS returned stage {arn} without events/whip endpoints")
        return StageInfo(
            arn=stage["arn"], stage_id=arn.rsplit("/", 1)[-1], events_url=events, whip_url=whip
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
            response = await self._call("ImportPublicKey", call)
        except _KeyQuotaFullError:
            raise Conflict(
                "IVS already holds 3 public keys in this region (its fixed limit); delete one "
                "that this service does not use (aws ivs-realtime list-public-keys)"
            ) from None
        return _key_info(response["publicKey"])

    async def get_public_key(self, arn: str) -> PublicKeyInfo:
        response = await self._call("GetPublicKey", lambda: self._client.get_public_key(arn=arn))
        return _key_info(response["publicKey"])

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
                PublicKeyInfo(arn=k["arn"], name=k.get("name", ""), fingerprint="")
                for k in response.get("publicKeys", [])
            )
            token = response.get("nextToken")
            if not token:
                return keys

    async def delete_public_key(self, arn: str) -> None:
        await self._call("DeletePublicKey", lambda: self._client.delete_public_key(arn=arn))

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
        token = response["participantToken"]
        return IvsToken(
            participant_id=token["participantId"],
            token=token["token"],
            user_id=token.get("userId", user_id),
            duration_minutes=token.get("duration", duration_minutes),
            expires_at=token.get("expirationTime"),
            capabilities=tuple(token.get("capabilities", capabilities)),
            attributes=token.get("attributes", dict(attributes)),
        )

    async def disconnect_participant(
        self, stage_arn: str, participant_id: str, reason: str
    ) -> None:
        await self._call(
            "DisconnectParticipant",
            lambda: self._client.disconnect_participant(
                stageArn=stage_arn, participantId=participant_id, reason=reason
            ),
        )


class _KeyQuotaFullError(Exception):
    """ImportPublicKey hit the three-keys-per-region limit."""


def _key_info(key: Mapping[str, Any]) -> PublicKeyInfo:
    return PublicKeyInfo(
        arn=str(key["arn"]),
        name=str(key.get("name", "")),
        fingerprint=str(key.get("fingerprint", "")),
        material=key.get("publicKeyMaterial"),
    )
