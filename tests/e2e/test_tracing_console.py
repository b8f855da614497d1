"""Tracing in a real `serve` process, as an operator turns it on: `OTEL_TRACES_EXPORTER=console`.

One request carrying a W3C `traceparent`: its server span, the children of each step, and
the access-log line all carry the caller's trace id, and no span holds a token.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import one_token_from_serve

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


def _documents(output: str) -> list[dict[str, Any]]:
    """Every JSON object of the output: one-line log records and the console exporter's
    indented spans, in the order written."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (start := output.find("{", at)) != -1:
        try:
            document, at = decoder.raw_decode(output, start)
        except json.JSONDecodeError:
            at = start + 1
            continue
        found.append(document)
    return found


@pytest.fixture
def traced_env(service_env: dict[str, str]) -> dict[str, str]:
    return service_env | {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "token-service-e2e",
    }


@pytest.mark.slow
def test_a_traced_request_is_one_trace_from_server_span_to_signature_and_in_the_access_log(
    emulator_url: str, traced_env: dict[str, str]
) -> None:
    served = one_token_from_serve(
        emulator_url, traced_env, "traced-user", headers={"traceparent": TRACEPARENT}
    )
    # Stopped with SIGTERM: the batch processor flushed every span before the exit.
    response, output = served.response, served.output
    documents = _documents(output)

    spans = [d for d in documents if "context" in d and "name" in d]
    traced = {s["name"]: s for s in spans if s["context"]["trace_id"] == f"0x{TRACE_ID}"}
    server = traced["POST /v1/participant-tokens"]
    assert server["resource"]["attributes"]["service.name"] == "token-service-e2e"
    for step in ("authenticate", "policy", "admission", "sign"):
        assert traced[step]["parent_id"] == server["context"]["span_id"], step
    (access,) = [
        d for d in documents if d.get("event") == "http_request" and d.get("status") == 201
    ]
    assert access["traceId"] == TRACE_ID
    assert access["route"] == "/v1/participant-tokens"
    assert response.json()["token"] not in output
    assert served.user_jwt not in output
