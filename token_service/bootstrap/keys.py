"""The key ring's part of the composition root: store, shared state, lock, counts, checks.

`app.create_app`, the `token-service keys` commands and `serve`'s start-up check
build the ring here from `Settings`, so all three see the same keys the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import redis
from botocore.config import Config

from token_service.bootstrap.clients import operator_clients
from token_service.bootstrap.features import build_policy
from token_service.config import Settings
from token_service.errors import ConfigurationError, DomainError
from token_service.infra.redis import RedisClient, connect
from token_service.ivs.client import Ivs
from token_service.keys.admin import KeyAdministration
from token_service.keys.files import KeyFiles
from token_service.keys.imports import RedisImportNotes
from token_service.keys.locks import Lock, MemoryLock, RedisLock
from token_service.keys.ring import KeyRing
from token_service.keys.runtime import KeyRuntime
from token_service.keys.secretsmanager import SecretsManagerKeyStore
from token_service.keys.state import RedisKeyState
from token_service.keys.store import KeyStore, KeyStoreKind
from token_service.keys.usage import KeyUsage, MemoryKeyUsage, RedisKeyUsage
from token_service.policy import Policy
from token_service.tokens.mode import Mode

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def build_secretsmanager(settings: Settings) -> SecretsManagerClient:
    config = Config(
        region_name=settings.ivs.region,
        connect_timeout=settings.ivs.connect_timeout_seconds,
        read_timeout=settings.ivs.read_timeout_seconds,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "secretsmanager", endpoint_url=settings.keys.secretsmanager_endpoint_url, config=config
    )


def build_key_store(
    settings: Settings, secretsmanager_client: SecretsManagerClient | None = None
) -> KeyStore:
    if settings.keys.store is KeyStoreKind.SECRETSMANAGER:
        return SecretsManagerKeyStore(
            secretsmanager_client or build_secretsmanager(settings),
            prefix=settings.keys.secrets_prefix,
            kms_key_id=settings.keys.secrets_kms_key_id,
            read_only=settings.keys.read_only,
        )
    return KeyFiles(settings.keys.dir, read_only=settings.keys.read_only)


def build_key_ring(
    settings: Settings,
    ivs: Ivs,
    policy: Policy,
    *,
    redis_client: RedisClient | None = None,
    clock: Callable[[], datetime] | None = None,
    secretsmanager_client: SecretsManagerClient | None = None,
) -> KeyRing:
    """The ring, loaded from its store (a bad key there is a `ConfigurationError` here)."""
    lock: Lock = RedisLock(redis_client) if redis_client is not None else MemoryLock()
    usage: KeyUsage = RedisKeyUsage(redis_client) if redis_client is not None else MemoryKeyUsage()
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    ring = KeyRing(
        build_key_store(settings, secretsmanager_client),
        ivs,
        max_token_lifetime=timedelta(minutes=policy.max_duration_minutes),
        shared=RedisKeyState(redis_client) if redis_client is not None else None,
        lock=lock,
        usage=usage,
        delete_margin=timedelta(seconds=settings.keys.delete_margin_seconds),
        imports=RedisImportNotes(redis_client) if redis_client is not None else None,
        **extra,
    )
    ring.load()
    return ring


def build_key_runtime(settings: Settings, ring: KeyRing) -> KeyRuntime:
    interval = settings.keys.rotation_interval_seconds
    return KeyRuntime(
        ring,
        refresh_seconds=settings.keys.refresh_seconds,
        ivs_check_seconds=settings.keys.ivs_check_seconds,
        reconcile_seconds=settings.keys.reconcile_seconds,
        # Polling a directory is a few stat() calls; Secrets Manager calls cost money, so
        # with Redis announcing every change it is polled only while a key is awaited.
        poll_store=settings.keys.store is KeyStoreKind.FILES or ring.shared is None,
        rotation_interval=timedelta(seconds=interval) if interval else None,
    )


@asynccontextmanager
async def operator_key_admin(settings: Settings) -> AsyncIterator[KeyAdministration]:
    """The ring as `token-service keys ...` sees it: the same store, Redis and IVS."""
    async with operator_clients(settings) as clients:
        ring = build_key_ring(
            settings, clients.ivs, build_policy(settings), redis_client=clients.redis
        )
        await ring.refresh(force=True)
        yield KeyAdministration(ring)
        await ring.usage.flush()


async def _check(settings: Settings) -> None:
    async with operator_clients(settings, connect_redis=False) as clients:
        ring = build_key_ring(
            settings, clients.ivs, build_policy(settings), redis_client=clients.redis
        )
        if clients.redis is not None:
            try:
                await connect(clients.redis)
                await ring.refresh(force=True)
            except (redis.RedisError, OSError) as exc:
                log.warning("Redis unavailable for the key check (%s)", type(exc).__name__)
        if ring.active() is None:
            raise ConfigurationError(
                [
                    f"TOKEN_SERVICE_KEYS_DIR: no active signing key in {ring.store.description}; "
                    "create one with `token-service keys rotate` (or use TOKEN_SERVICE_MODE=ivs)"
                ]
            )
        try:
            await ring.check_registered()
        except ConfigurationError:
            raise
        except DomainError as exc:
            # IVS being briefly unreachable must not stop a restart; readiness reports it.
            log.warning("could not check the signing keys with IVS: %s", exc.detail)


def _run(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    # Called from inside a running loop (an ASGI server's app factory): use a fresh one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def check_key_ring(settings: Settings) -> None:
    """`serve`'s start-up check: the keys load (P-384, readable), one is active, and IVS
    knows every key held; each problem names its file or secret."""
    if settings.mode is not Mode.LOCAL:
        return
    _run(lambda: _check(settings))
