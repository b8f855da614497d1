"""A real JWKS HTTP server for tests: loopback, free port, its own thread.

Tests change what it serves at run time: a new key set (rotation at the provider),
an error status, a garbage body, or no server at all (`go_down`/`come_back` close
and reopen the listening socket on the same port, so clients see connection
refused). It can hold requests
(a slow provider) and counts the requests it receives, so tests can bound provider load.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.redis_server import free_port


class JwksServer:
    def __init__(self, keys: Sequence[Mapping[str, Any]] = (), path: str = "/jwks.json") -> None:
        self._lock = threading.Lock()
        self._body = b""
        self._status = 200
        self._requests = 0
        self._path = path
        self.port = free_port()
        self._gate = threading.Event()
        self._gate.set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.set_keys(keys)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self._path}"

    @property
    def requests(self) -> int:
        """JWKS requests answered so far (any status)."""
        with self._lock:
            return self._requests

    # -- what it serves --------------------------------------------------------------

    def set_keys(self, keys: Sequence[Mapping[str, Any]]) -> None:
        """Serve `{"keys": [...]}` with 200 from now on."""
        self.set_raw(json.dumps({"keys": list(keys)}).encode(), status=200)

    def set_raw(self, body: bytes, status: int = 200) -> None:
        with self._lock:
            self._body = body
            self._status = status

    def fail_with(self, status: int = 500) -> None:
        self.set_raw(b'{"error": "internal"}', status=status)

    def serve_garbage(self) -> None:
        self.set_raw(b"<html>not a key set</html>", status=200)

    def hold(self) -> None:
        """Make requests wait (counted on arrival) until `release`: a slow provider."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server_ref._lock:
                    server_ref._requests += 1
                server_ref._gate.wait(timeout=30)
                with server_ref._lock:
                    body, status = server_ref._body, server_ref._status
                if self.path != server_ref._path:
                    body, status = b"not found", 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: test output is not the place for access logs."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        # A short poll interval makes `shutdown` (go_down, teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def go_down(self) -> None:
        """Close the listening socket: requests now fail with connection refused."""
        self.stop()

    def come_back(self) -> None:
        """Listen again on the same port (`allow_reuse_address` makes this reliable)."""
        if self._server is None:
            self.start()


@contextmanager
def running_jwks_server(keys: Sequence[Mapping[str, Any]] = ()) -> Iterator[JwksServer]:
    server = JwksServer(keys)
    server.start()
    try:
        yield server
    finally:
        server.stop()
