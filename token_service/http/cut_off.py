"""Requests cut off by the shutdown bound are answered 503, not uvicorn's 500."""

from __future__ import annotations

import asyncio
from typing import Any

from token_service.http.problem_json import PROBLEM_JSON, problem_bytes
from token_service.observability.logs import new_request_id

#: What a request cut off by the shutdown bound gets (instead of uvicorn's 500).
_CUT_OFF_BODY = problem_bytes(
    503,
    title="Service shutting down",
    detail="the service stopped before this request finished; send it again",
    code="shutting-down",
)
_CUT_OFF_HEADERS = [
    (b"content-type", PROBLEM_JSON.encode()),
    (b"content-length", str(len(_CUT_OFF_BODY)).encode()),
    (b"retry-after", b"1"),
    (b"connection", b"close"),
]


def answer_cut_off_requests(app: Any) -> Any:
    """Wrap an ASGI app: a request cancelled at the shutdown bound gets 503.

    uvicorn cancels the requests still running `timeout_graceful_shutdown` after
    SIGTERM, and answers a cancelled request that has not started its response with
    500. The client's request was not served because the service went away: that is
    a 503 with Retry-After (the next replica will serve it), and nothing was issued.
    """

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = False

        async def tracking(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await app(scope, receive, tracking)
        except asyncio.CancelledError:
            if started:
                raise
            # The task ends here: uvicorn cancelled it only to end it. Its id as every answer
            # has one (the document says so): the one its log lines carry, once routed.
            request_id = scope.get("state", {}).get("request_id") or new_request_id()
            headers = [*_CUT_OFF_HEADERS, (b"x-request-id", request_id.encode())]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": _CUT_OFF_BODY})

    return guarded
