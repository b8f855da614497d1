"""Does the connected Redis keep what it acknowledged across a restart?

Bans and the mapping log live in Redis. A Redis that persists nothing (no AOF, no RDB
snapshots) starts empty after a restart: every ban is lifted and the record of which
app user got which participant ID is gone, without an error anywhere. So the service
asks Redis once at start-up (`CONFIG GET`) and warns when it persists nothing.

Managed Redis often refuses `CONFIG` (ElastiCache renames it, ACLs may deny it): then the
answer is "unknown", said once at INFO, since durability is the provider's to state.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping
from typing import Any

import redis

from token_service.infra.redis import RedisClient

log = logging.getLogger(__name__)


class Persistence(enum.StrEnum):
    #: The append-only file: every write logged (`appendonly yes`).
    AOF = "aof"
    #: RDB snapshots only (`save` rules): writes since the last snapshot are lost.
    SNAPSHOTS = "snapshots"
    NONE = "none"
    #: Redis would not say (`CONFIG` refused, renamed or Redis unreachable).
    UNKNOWN = "unknown"


def classify(config: Mapping[str, str]) -> Persistence:
    """From `CONFIG GET appendonly` and `CONFIG GET save` replies."""
    if config.get("appendonly", "").lower() == "yes":
        return Persistence.AOF
    if config.get("save", "").strip():
        return Persistence.SNAPSHOTS
    return Persistence.NONE


async def persistence_of(client: RedisClient, timeout_seconds: float = 1.0) -> Persistence:
    config: dict[str, str] = {}
    try:
        async with asyncio.timeout(timeout_seconds):
            for name in ("appendonly", "save"):
                reply: Mapping[Any, Any] = dict(await client.config_get(name))
                # A cluster client may answer per node: any node's reply stands for all
                # (one configuration is deployed to every node).
                nested = [v for v in reply.values() if isinstance(v, Mapping)]
                answer: Mapping[Any, Any] = nested[0] if nested else reply
                config.update({str(k): str(v) for k, v in answer.items()})
    except (redis.RedisError, OSError, TimeoutError):
        return Persistence.UNKNOWN
    if not config:
        # A cluster client answers per node; an empty reply says nothing.
        return Persistence.UNKNOWN
    return classify(config)


async def warn_unless_persistent(client: RedisClient) -> Persistence:
    """Log what a restart of this Redis would lose; returns what was found."""
    found = await persistence_of(client)
    if found is Persistence.NONE:
        log.warning(
            "the connected Redis persists nothing (appendonly no, no save rules): a Redis "
            "restart lifts every ban and loses the mapping log. Run it with "
            "`--appendonly yes` (see docs/operations.md, Redis)",
            extra={"event": "redis_not_persistent", "persistence": found.value},
        )
    elif found is Persistence.SNAPSHOTS:
        log.warning(
            "the connected Redis persists by snapshots only: a restart loses the bans and "
            "mapping records written since the last snapshot. `--appendonly yes` keeps them",
            extra={"event": "redis_not_persistent", "persistence": found.value},
        )
    elif found is Persistence.UNKNOWN:
        log.info(
            "could not ask Redis how it persists (CONFIG refused?): make sure it keeps bans "
            "and the mapping log across restarts",
            extra={"event": "redis_persistence_unknown", "persistence": found.value},
        )
    return found
