"""A request cut off by the shutdown bound: 503 with Retry-After and its request id."""

from __future__ import annotations

import asyncio
from typing import Any

from token_service.http.cut_off import answer_cut_off_requests


async def _cut_off(state: dict[str, Any]) -> dict[str, Any]:
    """The response start of a request cancelled while the app was still working on it."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("state", {}).update(state)
        await asyncio.Event().wait()

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    task = asyncio.create_task(answer_cut_off_requests(app)({"type": "http"}, None, send))
    await asyncio.sleep(0)
    task.cancel()
    await task
    return sent[0]


async def test_a_cut_off_request_is_503_with_retry_after() -> None:
    start = await _cut_off({})
    headers = dict(start["headers"])
    assert (start["status"], headers[b"retry-after"]) == (503, b"1")


async def test_a_cut_off_request_keeps_the_request_id_it_was_given() -> None:
    start = await _cut_off({"request_id": "req-0123456789"})
    assert dict(start["headers"])[b"x-request-id"] == b"req-0123456789"


async def test_a_cut_off_request_cut_before_it_had_an_id_gets_one() -> None:
    start = await _cut_off({})
    assert len(dict(start["headers"])[b"x-request-id"]) >= 8
