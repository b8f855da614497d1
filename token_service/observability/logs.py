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
import secrets
import sys
from datetime import UTC, datetime
from typing import Any

from token_service.observability.tracing import current_ids


class LogFormat(enum.StrEnum):
    AUTO = "auto"
    JSON = "json"
    TEXT = "text"


def new_request_id() -> str:
    return secrets.token_hex(8)


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
