"""`ServiceApp`: the Litestar app, with the access log around everything it answers.

Litestar runs an app's middleware per route, once routing has found one: a 404 for an
unknown path or a 405 never reaches it. The access log must see every request, so it
wraps the app's ASGI entry point itself (Litestar's public `__call__`), which serves
routed and unrouted requests alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar.types import LifeSpanReceive, LifeSpanScope, LifeSpanSend, Receive, Scope, Send

    from token_service.http.access_log import AccessLog


class ServiceApp(Litestar):
    #: Set by the composition root; None: no access log.
    access_log: AccessLog | None = None

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        access_log = self.access_log
        if access_log is None or scope["type"] != ScopeType.HTTP:
            await super().__call__(scope, receive, send)
            return
        await access_log(scope, receive, send, super().__call__)  # type: ignore[arg-type]
