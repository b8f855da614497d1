"""Gives every request an id: the caller's `X-Request-Id` when sane (and sent once), else a
fresh one.

The id is echoed in the response header, set in the logging context, and put in
every problem+json body, so a user's report can be matched to the log lines.
"""

from __future__ import annotations

import re

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from token_service.observability.logs import new_request_id, request_id_var

_SANE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
HEADER = "x-request-id"


def _incoming(scope: Scope) -> str | None:
    """The caller's id if it sent one sane id. Several lines are no id: taking the first
    would let a client's own line win over the one a proxy adds after it (the id every
    log line and audit record of the request carries)."""
    values = [value for name, value in scope.get("headers", []) if name == b"x-request-id"]
    if len(values) != 1:
        return None
    text = values[0].decode("latin-1")
    return text if _SANE.fullmatch(text) else None


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = _incoming(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[HEADER] = request_id
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)

    return middleware
