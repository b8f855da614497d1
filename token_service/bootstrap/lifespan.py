"""The app's lifespan: connect, start every component's background loops in one task group,
and on the way out stop them before the clients they use are closed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import redis.asyncio
from litestar import Litestar

from token_service.infra.background import Spawn
from token_service.infra.redis import RedisClient, connect
from token_service.ivs.client import Ivs

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


async def _await(coroutine: Coroutine[Any, Any, None]) -> None:
    await coroutine


#: Starts a component, handing it the spawner for its background loops.
Starter = Callable[[Spawn], Awaitable[None]]


def lifespan_of(
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
            # Every background loop runs in this task group (see infra/background.py), and
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
