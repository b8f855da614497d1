"""Running loops for the app's lifetime: one place decides who owns background tasks.

Components that keep a loop going (JWKS refresh, key-change following, the IVS
budget heartbeat, the mapping log's upkeep) take a `Spawn`. The app's lifespan
passes one that starts the loop in its anyio task group, so the ASGI server's own
cancellation machinery owns every task: bare `asyncio.create_task` tasks, cancelled
behind anyio's back at shutdown, were seen to derail the lifespan's shutdown under
Litestar's test client. Outside an app (the CLI, tests of one component) the default
spawns a plain asyncio task and the component cancels it in `close`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

Spawn = Callable[[Coroutine[Any, Any, None]], None]


def native_spawner(tasks: set[asyncio.Task[None]]) -> Spawn:
    """Start plain asyncio tasks, remembered in `tasks` so their owner can cancel them."""

    def spawn(coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return spawn


#: How long a cancelled task gets before it is cancelled again.
RECANCEL_SECONDS = 1.0


async def cancel_all(tasks: set[asyncio.Task[None]]) -> None:
    """Cancel and wait for `tasks`, without mistaking their cancellation for ours.

    A task that is still running a second after its cancellation is cancelled again:
    Python 3.11's `asyncio.wait_for` drops a cancellation that arrives as the awaited
    call completes (gh-86296), and a loop around such a call then runs on, so a single
    `cancel()` could leave `close()` waiting forever (anyio's task groups, which own
    the app's loops, cancel again at every await for the same reason).
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
