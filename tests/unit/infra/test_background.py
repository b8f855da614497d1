"""`cancel_all`: background tasks end when their owner closes, even stubborn ones."""

from __future__ import annotations

import asyncio

import pytest

from token_service.infra import background
from token_service.infra.background import cancel_all, native_spawner


async def test_cancelled_tasks_end_and_leave_the_set() -> None:
    tasks: set[asyncio.Task[None]] = set()
    spawn = native_spawner(tasks)
    spawn(asyncio.sleep(60))
    spawn(asyncio.sleep(60))
    await cancel_all(tasks)
    assert not tasks


async def test_a_task_that_swallowed_its_cancellation_is_cancelled_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What Python 3.11's asyncio.wait_for does when the cancellation meets a completing call.
    monkeypatch.setattr(background, "RECANCEL_SECONDS", 0.05)
    swallowed = asyncio.Event()

    async def loop_that_swallows_once() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            swallowed.set()
        await asyncio.Event().wait()  # runs on, as the loop around such a call would

    tasks: set[asyncio.Task[None]] = set()
    native_spawner(tasks)(loop_that_swallows_once())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_all(tasks)
    assert swallowed.is_set()
    assert not tasks
