"""A client that hangs up before its request is whole is no server error.

uvicorn tells the app by answering `receive()` with `http.disconnect`; Litestar's body
reader then raises `InternalServerException("client disconnected prematurely")`, which was
answered (to no one) and counted as a 500: anyone with a valid app JWT could trip the
server-error alert by announcing a body and closing the socket. This middleware notes the
disconnect in the request's scope, and `problems` answers such a request 499 ("client
closed request", as nginx logs it): counted under that status in the HTTP metrics, not as
a problem (`request_errors_total`), and not logged as an error. Nothing was issued: the
body never arrived.

A client that leaves after sending its whole request is not seen here: the app reads
nothing more, finishes (the token issued, recorded and audited) and answers into a closed
connection, which uvicorn drops; that request is counted with the status it was answered.
"""

from __future__ import annotations

from typing import Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

#: nginx's status for a request whose client closed the connection before the answer.
CLIENT_CLOSED_REQUEST: Final = 499
_STATE_KEY: Final = "client_disconnected"


def client_disconnected(scope: Scope) -> bool:
    """Whether the client hung up while the app was reading the request."""
    return bool(scope.get("state", {}).get(_STATE_KEY))


def client_disconnect_middleware(app: ASGIApp) -> ASGIApp:
    """Notes an `http.disconnect` received while reading the request in its scope."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return

        async def watched_receive() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope.setdefault("state", {})[_STATE_KEY] = True
            return message

        await app(scope, watched_receive, send)

    return middleware
