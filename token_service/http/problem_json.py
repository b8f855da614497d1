"""The `application/problem+json` (RFC 9457) document every error answer of the service has.

`http/problems.py` maps errors to it inside the app; the two answers given below the app
(a request head too large, at the protocol; a request cut off by shutdown, around the
app) build the same document here, so every problem type shares one base.
"""

from __future__ import annotations

import json
from typing import Any

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://ivs-token-service.dev/problems/"


def problem_document(status: int, *, title: str, detail: str, code: str) -> dict[str, Any]:
    return {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail}


def problem_bytes(status: int, *, title: str, detail: str, code: str) -> bytes:
    """The document as a response body, for answers written outside the app."""
    return json.dumps(problem_document(status, title=title, detail=detail, code=code)).encode()
