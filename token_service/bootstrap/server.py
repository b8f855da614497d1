"""The ASGI server's part of the composition: uvicorn configured with the service's HTTP
protocol (the request-head limit and the connection timeouts) and the app wrapped so a
request cut off at shutdown gets a 503. `cli.serve` runs it (sockets, workers, signals)."""

from __future__ import annotations

from typing import Any

import uvicorn

from token_service.http.cut_off import answer_cut_off_requests
from token_service.http.head_limits import ConnectionTimeouts, bounded_protocol

#: Pending connections the kernel queues per listener while workers are busy.
BACKLOG = 2048


def serving_app(app: Any) -> Any:
    """The app as the server runs it: requests cut off by the shutdown bound answered 503."""
    return answer_cut_off_requests(app)


def uvicorn_config(
    app: Any,
    *,
    host: str,
    port: int,
    workers: int,
    shutdown_timeout_seconds: int,
    keep_alive_seconds: int,
    head_timeout_seconds: int,
    body_timeout_seconds: int,
    send_timeout_seconds: int,
) -> uvicorn.Config:
    """uvicorn's configuration: `app` built, or the import string of the workers' factory."""
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        host=host,
        port=port,
        workers=workers,
        backlog=BACKLOG,
        # Our logging is configured by the entry point; uvicorn's would replace it.
        log_config=None,
        # Request lines would duplicate ours; client IPs come from trusted proxies only.
        access_log=False,
        proxy_headers=False,
        server_header=False,
        # Request heads over 64 KiB are refused with 431 (uvicorn has no limit of its own),
        # and heads, bodies and unread answers are bounded in time (uvicorn bounds none).
        # A factory where uvicorn's annotation says a class: uvicorn only calls it.
        http=bounded_protocol(  # type: ignore[arg-type]
            ConnectionTimeouts(
                head_seconds=head_timeout_seconds,
                body_seconds=body_timeout_seconds,
                send_seconds=send_timeout_seconds,
            )
        ),
        # Idle connections, before their first request too (the protocol arms it then).
        timeout_keep_alive=keep_alive_seconds,
        # No route is a WebSocket: an upgrade would leave the protocol and its bounds.
        ws="none",
        timeout_graceful_shutdown=shutdown_timeout_seconds,
    )
