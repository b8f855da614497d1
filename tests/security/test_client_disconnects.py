"""A client that hangs up is not a server error (issue 19, item 4).

Anyone holding a valid app JWT can open a connection, announce a body, send part of it
and close. That must not show as a 500 in `token_service_http_requests_total` (the
README's server-error alert) or in `token_service_request_errors_total`, nor as an
ERROR log line with a traceback: it is counted with status 499, nginx's "client closed
request". A real `token-service serve` process with real Redis, reached over raw sockets.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.http.conftest import SHARED_SECRET, bearer
from tests.security.conftest import serving_logged
from token_service.auth import mint_user_token

URL = "/v1/participant-tokens"
ADMIN = "disconnect-admin-token-0123456789"
EVENTS_SECRET = "disconnect-events-secret-" + "e" * 32
ANNOUNCED = 1000
SENT = b'{"stageArn'  # 10 of the 1000 bytes announced
#: How long a test waits for the service to have handled a request it cannot see answered.
SETTLE_SECONDS = 10


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("disconnects") / "service.log"


@pytest.fixture(scope="module")
def served(module_env: dict[str, str], module_redis_url: str, log_file: Path) -> Iterator[str]:
    env = module_env | {
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN,
        "TOKEN_SERVICE_EVENTS_SECRET": EVENTS_SECRET,
        "TOKEN_SERVICE_REDIS_URL": module_redis_url,
    }
    with serving_logged(env, log_file) as base:
        yield base


def _user(sub: str) -> str:
    return mint_user_token(SHARED_SECRET.encode(), sub=sub, roles=["publisher"])


@contextmanager
def _hanging_up(base: str, path: str, token: str, body: bytes, length: int) -> Iterator[None]:
    """Sends a request head announcing `length` bytes, then `body`; when the block ends, the
    socket is closed without any answer read."""
    parts = urlsplit(base)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as connection:
        connection.sendall(head + body)
        yield


def _send_and_hang_up(base: str, path: str, token: str) -> None:
    """10 bytes of the 1000 announced, then the socket closed."""
    with _hanging_up(base, path, token, SENT, ANNOUNCED):
        pass


def _samples(base: str, name: str) -> list[dict[str, str]]:
    """Every sample of metric family `name` (without `_total`), as its labels plus value."""
    text = httpx.get(f"{base}/metrics").text
    return [
        {**sample.labels, "value": str(sample.value)}
        for family in text_string_to_metric_families(text)
        if family.name == name
        for sample in family.samples
        if sample.name == f"{name}_total"
    ]


def _statuses(base: str) -> Counter[tuple[str, str]]:
    """HTTP requests counted so far, by (route template, status)."""
    counts: Counter[tuple[str, str]] = Counter()
    for sample in _samples(base, "token_service_http_requests"):
        counts[(sample["path"], sample["status_code"])] += int(float(sample["value"]))
    return counts


def _error_codes(base: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sample in _samples(base, "token_service_request_errors"):
        counts[sample["code"]] += int(float(sample["value"]))
    return counts


def _settled(check: Callable[[], Any]) -> Any:
    """`check()`'s first truthy value: the service handles a request after the client left,
    and nothing tells the client when."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _new_counts(base: str, before: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
    counted: Counter[tuple[str, str]] = _settled(lambda: _statuses(base) - before)
    return counted


def _get_stage_calls(emulator_url: str) -> int:
    stats = httpx.get(f"{emulator_url}/_emulator/stats").json()["operations"]
    return int(stats.get("GetStage", {}).get("calls", 0))


def _log_lines(log_file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]


def _errors_logged(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["level"].upper() in {"ERROR", "CRITICAL"}]


ROUTES = {
    "token": (URL, lambda: _user("hangs-up")),
    "exchange": (f"{URL}/participant-that-never-was/exchange", lambda: _user("hangs-up")),
    "admin ban": ("/admin/bans", lambda: ADMIN),
    "ivs events": ("/v1/ivs-events", lambda: EVENTS_SECRET),
}


@pytest.mark.parametrize(("path", "credential"), ROUTES.values(), ids=ROUTES.keys())
def test_a_client_hanging_up_mid_body_is_counted_499_not_as_a_server_error(
    served: str, log_file: Path, path: str, credential: Callable[[], str]
) -> None:
    before, errors_before = _statuses(served), _error_codes(served)
    logged_before = len(_log_lines(log_file))

    _send_and_hang_up(served, path, credential())
    counted = _new_counts(served, before)

    errors = _error_codes(served) - errors_before
    assert ([status for _, status in counted], errors) == (["499"], Counter())
    logged = _log_lines(log_file)[logged_before:]
    assert _errors_logged(logged) == []
    assert "Traceback" not in log_file.read_text()


def test_a_whole_request_after_a_hang_up_is_served(served: str, stage_arn: str) -> None:
    _send_and_hang_up(served, URL, _user("hangs-up-then-asks"))

    response = httpx.post(
        f"{served}{URL}", json={"stageArn": stage_arn}, headers=bearer(_user("asks-after"))
    )

    assert response.status_code == 201, response.text


def test_a_client_gone_while_its_token_is_issued_leaves_the_token_recorded_and_no_error(
    served: str, log_file: Path, module_emulator: Any, module_ivs: Any
) -> None:
    """The whole request arrives, then the client hangs up while the service waits on a
    slow IVS (GetStage for a stage it has not cached; the socket closes once the emulator
    has the call). The service does not notice until it answers: the token is issued,
    recorded and audited, the 201 goes nowhere and is counted as the 201 it was. No 5xx,
    no ERROR line."""
    slow_stage = str(module_ivs.create_stage(name="slow")["stage"]["arn"])
    faults = f"{module_emulator.url}/_emulator/faults"
    httpx.post(faults, json={"operation": "GetStage", "latencyMs": 2000}).raise_for_status()
    before, stage_reads = _statuses(served), _get_stage_calls(module_emulator.url)
    try:
        body = json.dumps({"stageArn": slow_stage}).encode()
        with _hanging_up(served, URL, _user("gone-while-issued"), body, len(body)):
            assert _settled(lambda: _get_stage_calls(module_emulator.url) > stage_reads)
        issued = _settled(
            lambda: [
                line
                for line in _log_lines(log_file)
                if line.get("event") == "token_issued" and line["stageArn"] == slow_stage
            ]
        )
    finally:
        httpx.delete(faults).raise_for_status()
    counted = _new_counts(served, before)

    assert len(issued) == 1
    record = httpx.get(
        f"{served}/admin/participants/{issued[0]['participantId']}", headers=bearer(ADMIN)
    )
    assert record.status_code == 200, record.text
    assert [status for _, status in counted] == ["201"]
    assert _errors_logged(_log_lines(log_file)) == []
