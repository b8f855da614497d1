"""The private internals of libraries the service leans on are still there, in the shape used.

Each is used in one place only, where a comment names the release it was checked against
and why no public API serves. A library release that moves or reshapes one fails here,
by name, in `make test-latest` before it can fail silently in production (an override
that is no longer called, a subclass hook that never fires). Behaviour is tested where
each is used: tests/security/test_hostile_bodies.py (431), test_connection_timeouts.py (408,
idle and unread answers), unit/cli/test_workers.py and e2e/test_deploy_workers.py (a
listening socket per worker), test_redis_connection_faults.py
(a write on a closed connection), integration/infra/test_lane.py (TLS), test_openapi_document.py
(closed request bodies).
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
from typing import Any

import msgspec
import pytest
import uvicorn
from litestar import Litestar, post
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.params import JSONBody
from litestar.plugins import OpenAPISchemaPlugin
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection, SSLConnection
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from tests.support.socketless import SocketlessTransport
from token_service.cli.workers import SlotSupervisor
from token_service.http.head_limits import (
    MAX_HEAD_BYTES,
    BoundedHttpToolsProtocol,
    ConnectionTimeouts,
)
from token_service.http.openapi import StrictStructSchemaPlugin
from token_service.infra.lane import _endpoint
from token_service.infra.redis import _WriteGuard, build_redis


class _Transport(SocketlessTransport):
    """Collects what the protocol writes; never touches a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def write_eof(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class Closed(msgspec.Struct, forbid_unknown_fields=True):
    name: str


def _bounded_protocol() -> tuple[Any, _Transport]:

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    config = uvicorn.Config(app, http=BoundedHttpToolsProtocol, log_config=None)
    protocol = BoundedHttpToolsProtocol(
        config=config,
        server_state=ServerState(),
        app_state={},
        _loop=asyncio.get_running_loop(),
        timeouts=ConnectionTimeouts(head_seconds=10, body_seconds=10, send_seconds=10),
    )
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport


def test_uvicorn_httptools_protocol_still_has_the_hooks_the_head_limit_overrides() -> None:

    for name in (
        "data_received",
        "on_message_begin",
        "on_headers_complete",
        "on_message_complete",
        "connection_made",
        "connection_lost",
        "pause_writing",
        "resume_writing",
        "timeout_keep_alive_handler",
        "_start_asgi_task",
    ):
        assert callable(getattr(HttpToolsProtocol, name, None)), name
    assert list(inspect.signature(HttpToolsProtocol._start_asgi_task).parameters) == [
        "self",
        "cycle",
        "app",
    ]
    assert list(inspect.signature(HttpToolsProtocol.__init__).parameters)[:4] == [
        "self",
        "config",
        "server_state",
        "app_state",
    ]


async def test_uvicorn_parser_calls_the_head_hooks_the_limit_counts_with() -> None:
    protocol, transport = _bounded_protocol()

    protocol.data_received(b"POST /v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n")
    assert protocol._in_head
    protocol.data_received(b"\r\n")
    assert not protocol._in_head, "on_headers_complete no longer reaches the subclass"
    protocol.data_received(b"{}")

    assert protocol._in_head, "on_message_complete no longer reaches the subclass"
    assert transport.written == b""
    protocol.connection_lost(None)


async def test_uvicorn_protocol_keeps_the_state_the_timeouts_read() -> None:
    """The connection timeouts read uvicorn's per-connection state: the keep-alive timer,
    the pipeline, the request cycles and what each has answered."""
    protocol, _ = _bounded_protocol()

    assert protocol.timeout_keep_alive_task is not None, "armed at connection_made"
    assert protocol.timeout_keep_alive == uvicorn.Config(None).timeout_keep_alive
    assert len(protocol.pipeline) == 0
    protocol.data_received(b"POST /v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
    cycle = protocol.cycle
    for name in ("response_started", "response_complete", "disconnected"):
        assert getattr(cycle, name) is False, name
    assert isinstance(cycle.message_event, asyncio.Event)
    assert protocol._answering is cycle, "_start_asgi_task no longer reaches the subclass"
    protocol.connection_lost(None)


async def test_an_oversized_head_is_refused_through_the_protocol_hooks() -> None:

    protocol, transport = _bounded_protocol()

    protocol.data_received(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEAD_BYTES)

    assert transport.written.startswith(b"HTTP/1.1 431 ")
    protocol.connection_lost(None)


def test_redis_connection_still_sends_every_command_through_send_packed_command() -> None:

    private = AbstractConnection._send_packed_command
    assert inspect.iscoroutinefunction(private)
    assert list(inspect.signature(private).parameters)[:2] == ["self", "command"]
    # Our override only matters while the public method goes through it.
    assert "self._send_packed_command(" in inspect.getsource(AbstractConnection.send_packed_command)


@pytest.mark.parametrize("scheme", ["redis", "rediss", "unix"])
def test_the_write_guard_is_the_connection_class_of_each_redis_url(scheme: str) -> None:

    url = "unix:///tmp/redis.sock" if scheme == "unix" else f"{scheme}://127.0.0.1:6399/0"

    client: Any = build_redis(url)

    assert issubclass(client.connection_pool.connection_class, _WriteGuard)


def test_redis_cluster_nodes_still_take_the_connection_class_the_guard_sets() -> None:

    client = build_redis("redis+cluster://127.0.0.1:7000/0")

    assert isinstance(client, RedisCluster)
    assert issubclass(client.nodes_manager.connection_kwargs["connection_class"], _WriteGuard)
    nodes = client.nodes_manager.startup_nodes.values()
    assert nodes
    assert all(issubclass(node.connection_class, _WriteGuard) for node in nodes)


def test_redis_ssl_connection_still_builds_its_context_from_the_url_options() -> None:

    connection = SSLConnection(host="127.0.0.1", port=6379, ssl_cert_reqs="required")
    context = connection.ssl_context.get()

    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_the_lane_takes_redis_py_tls_settings_from_a_rediss_url() -> None:

    endpoint = _endpoint("rediss://127.0.0.1:6380/0?ssl_cert_reqs=none")

    assert isinstance(endpoint.ssl, ssl.SSLContext)
    assert endpoint.ssl.verify_mode == ssl.CERT_NONE


def test_litestar_struct_schema_plugin_is_still_where_it_is_imported_from() -> None:

    assert issubclass(StrictStructSchemaPlugin, StructSchemaPlugin)
    assert issubclass(StructSchemaPlugin, OpenAPISchemaPlugin)
    assert list(inspect.signature(StructSchemaPlugin.to_openapi_schema).parameters) == [
        "self",
        "field_definition",
        "schema_creator",
    ]


def test_a_closed_struct_is_documented_closed_by_the_plugin() -> None:

    @post("/closed", sync_to_thread=False)
    def handler(data: JSONBody[Closed]) -> None:
        pass

    app = Litestar([handler], plugins=[StrictStructSchemaPlugin()])
    schemas = app.openapi_schema.to_schema()["components"]["schemas"]

    closed = next(schema for name, schema in schemas.items() if name.endswith("Closed"))
    assert closed["additionalProperties"] is False


def test_litestar_cors_middleware_is_still_where_the_per_route_cors_imports_it() -> None:
    # token_service/http/cors.py runs it per route (behaviour: tests/security/test_cors_scope.py).
    from litestar.middleware._internal.cors import CORSMiddleware  # noqa: PLC0415

    assert list(inspect.signature(CORSMiddleware.__init__).parameters) == ["self", "app", "config"]


def test_uvicorns_supervisor_still_starts_workers_where_slot_supervisor_overrides_it() -> None:
    """cli/workers.py's SlotSupervisor replaces every method of uvicorn's Multiprocess that
    starts a worker (each with its slot's sockets) and builds on its Process: a new method
    that starts workers, or a Process reshaped, would hand workers the empty shared list."""
    starting = {
        name
        for name, member in inspect.getmembers(Multiprocess, inspect.isfunction)
        if "Process(" in inspect.getsource(member)
    }
    assert starting == {
        "init_processes",
        "keep_subprocess_alive",
        "restart_all",
        "handle_ttin",
    }
    assert all(name in vars(SlotSupervisor) for name in starting | {"handle_ttou"})
    assert list(inspect.signature(Process.__init__).parameters) == ["self", "config", "sockets"]
    for method in ("start", "is_alive", "wait_until_ready", "kill", "join", "terminate"):
        assert callable(getattr(Process, method))
    assert STARTUP_FAILURE == 3
