"""Structured logging: JSON lines when not on a terminal, with the request id in each line
(and the trace and span ids while a traced request is served).

The request id lives in a context variable set by the request-id middleware, so
every line logged while serving a request carries it without being passed around.
"""

from __future__ import annotations

import contextvars
import enum
import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from token_service.observability.tracing import current_ids


class LogFormat(enum.StrEnum):
    AUTO = "auto"
    JSON = "json"
    TEXT = "text"


class RandomHex:
    """Hex strings of `size` random bytes from the OS (as `secrets.token_hex(size)`), read
    `pool` bytes at a time: one `getrandom` system call per `pool // size` strings, not
    one per request (a system call from a cold cache is several µs on a small VM).
    Thread-safe. A forked child forgets its parent's pool (else both would hand out the
    same ids)."""

    def __init__(self, size: int, pool: int = 4096) -> None:
        if size <= 0 or pool < size:
            raise ValueError("size must be positive and at most pool")
        self._size = size
        self._pool_size = pool - pool % size
        self._pool = b""
        self._at = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._at >= len(self._pool):
                self._pool = os.urandom(self._pool_size)
                self._at = 0
            start = self._at
            self._at = start + self._size
            return self._pool[start : self._at].hex()

    def forget(self) -> None:
        """Drop what is left of the pool: the next string reads fresh bytes. Made for a
        forked child, whose only thread this is: a new lock, as another thread of the
        parent may have held the old one at the fork."""
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0


#: A new request id: 16 hex digits, 64 random bits.
new_request_id = RandomHex(8)
os.register_at_fork(after_in_child=new_request_id.forget)


request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

# Attributes every LogRecord has; anything else was passed with `extra=` and is data.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# uvicorn passes a copy of its message with terminal colour codes: not data.
_STANDARD.add("color_message")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["requestId"] = request_id
        ids = current_ids()
        if ids is not None:
            entry["traceId"], entry["spanId"] = ids
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = request_id_var.get()
        extras = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
        }
        if extras:
            line += " " + json.dumps(extras, default=str, ensure_ascii=False)
        ids = current_ids()
        if ids is not None:
            line += f" [trace={ids[0]}]"
        return f"{line} [req={request_id}]" if request_id else line


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Install one stdout handler on the root logger (entry points only)."""
    use_json = log_format is LogFormat.JSON or (
        log_format is LogFormat.AUTO and not sys.stdout.isatty()
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Request lines from the ASGI server duplicate ours and may carry query strings.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for noisy in ("botocore", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
