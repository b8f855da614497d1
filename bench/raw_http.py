"""A minimal blocking HTTP/1.1 keep-alive client for latency benchmarks.

httpx spends a few hundred microseconds of Python per request on this machine, which a
latency benchmark would count as the service's. This client sends precomputed bytes on
one socket and reads the status line, headers and a Content-Length body: what any
production load balancer or app client does, at a cost of a few microseconds.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping


class RawHttp:
    """One keep-alive connection to 127.0.0.1:`port` (TCP_NODELAY, like real clients)."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file = self._sock.makefile("rb")

    @staticmethod
    def encode(
        method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes = b""
    ) -> bytes:
        """The request's bytes, built once and sent many times."""
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one request; return its status and body."""
        self._sock.sendall(request)
        status = int(self._file.readline().split(b" ", 2)[1])
        length = 0
        while True:
            line = self._file.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, self._file.read(length) if length else b""

    def close(self) -> None:
        self._file.close()
        self._sock.close()
