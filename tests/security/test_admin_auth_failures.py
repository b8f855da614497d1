"""Failed admin authentications are logged, counted and throttled per client IP (issue 19,
item 8): two real `serve` processes (replicas) on one Redis, behind a trusted proxy that
names the client in `X-Forwarded-For`.

Each missing or wrong admin token is one WARNING line (`admin_auth_failed`: client IP,
method, path, reason; never the token, nor a part or digest of it) and one count in
`token_service_admin_auth_failures_total`. After `TOKEN_SERVICE_ADMIN_AUTH_FAILURE_RATE`
(10/hour here, so no failure is forgiven during the test) the IP is locked out of every
admin route, the right token included, on every replica; other IPs are not."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.security.conftest import serving_logged

SHARED_SECRET = "admin-failures-shared-secret-" + "s" * 32
ADMIN_TOKEN = "admin-failures-" + "a" * 24
ALLOWANCE = 10


@dataclass
class Replica:
    base: str
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        text = self.log.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@contextmanager
def _replica(env: dict[str, str], log: Path) -> Iterator[Replica]:
    """`token-service serve` with its output in `log`, readable while it runs."""
    with serving_logged(env, log) as base:
        yield Replica(base, log)


@pytest.fixture(scope="module")
def replicas(
    module_env: dict[str, str], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Replica, Replica]]:
    flush = redis.Redis.from_url(redis_url)
    flush.flushdb()
    flush.close()
    env = module_env | {
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
        "TOKEN_SERVICE_REDIS_URL": redis_url,
        "TOKEN_SERVICE_TRUSTED_PROXIES": "127.0.0.1",
        "TOKEN_SERVICE_ADMIN_AUTH_FAILURE_RATE": f"{ALLOWANCE}/hour",
        "TOKEN_SERVICE_LOG_FORMAT": "json",
    }
    logs = tmp_path_factory.mktemp("admin-failures")
    with _replica(env, logs / "a.log") as first, _replica(env, logs / "b.log") as second:
        yield first, second


@pytest.fixture
def replica(replicas: tuple[Replica, Replica]) -> Replica:
    return replicas[0]


_ips = iter(f"203.0.113.{n}" for n in range(1, 255))


@pytest.fixture
def ip() -> str:
    """A client address of this test's own: no other test spent its allowance."""
    return next(_ips)


def wrong_token() -> str:
    return secrets.token_hex(20)


def admin_get(replica: Replica, ip: str, token: str | None, path: str = "/admin/keys") -> Any:
    headers = {"X-Forwarded-For": ip}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(f"{replica.base}{path}", headers=headers, timeout=30)


def spend_allowance(replica: Replica, ip: str) -> None:
    for _ in range(ALLOWANCE):
        assert admin_get(replica, ip, wrong_token()).status_code == 401


def refusals(replica: Replica, reason: str) -> float:
    text = httpx.get(f"{replica.base}/metrics", timeout=30).text
    match = re.search(
        rf'^token_service_admin_auth_failures_total\{{reason="{reason}"\}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else 0.0


def test_the_wrong_token_after_the_allowance_is_429_with_retry_after(
    replica: Replica, ip: str
) -> None:
    spend_allowance(replica, ip)

    response = admin_get(replica, ip, wrong_token())

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1


def test_a_locked_out_ip_is_refused_even_with_the_right_token(replica: Replica, ip: str) -> None:
    spend_allowance(replica, ip)

    response = admin_get(replica, ip, ADMIN_TOKEN)

    assert response.status_code == 429


def test_the_lockout_covers_every_admin_route(replica: Replica, ip: str) -> None:
    spend_allowance(replica, ip)

    response = admin_get(replica, ip, ADMIN_TOKEN, "/admin/participants/Xq3abc")

    assert response.status_code == 429


def test_another_ip_is_not_locked_out(replica: Replica, ip: str) -> None:
    spend_allowance(replica, ip)

    other = admin_get(replica, "198.51.100.77", ADMIN_TOKEN)

    assert other.status_code == 200


def test_requests_without_a_token_count_as_failures(replica: Replica, ip: str) -> None:
    for _ in range(ALLOWANCE):
        assert admin_get(replica, ip, None).status_code == 401

    assert admin_get(replica, ip, None).status_code == 429


def test_right_tokens_spend_nothing_of_the_allowance(replica: Replica, ip: str) -> None:
    for _ in range(2 * ALLOWANCE):
        assert admin_get(replica, ip, ADMIN_TOKEN).status_code == 200

    assert [admin_get(replica, ip, wrong_token()).status_code for _ in range(ALLOWANCE)] == [
        401
    ] * ALLOWANCE


def test_replicas_share_the_lockout(replicas: tuple[Replica, Replica], ip: str) -> None:
    first, second = replicas
    spend_allowance(first, ip)

    assert admin_get(second, ip, wrong_token()).status_code == 429
    assert admin_get(second, ip, ADMIN_TOKEN).status_code == 429


def test_each_failure_is_one_warning_naming_ip_method_path_and_reason(
    replica: Replica, ip: str
) -> None:
    admin_get(replica, ip, wrong_token(), "/admin/keys")
    admin_get(replica, ip, None, "/admin/bans")

    lines = [
        line
        for line in replica.lines()
        if line.get("event") == "admin_auth_failed" and line.get("clientIp") == ip
    ]

    assert [(e["level"], e["method"], e["path"], e["reason"]) for e in lines] == [
        ("warning", "GET", "/admin/keys", "invalid"),
        ("warning", "GET", "/admin/bans", "missing"),
    ]


def test_a_throttled_request_is_logged_as_such(replica: Replica, ip: str) -> None:
    spend_allowance(replica, ip)
    admin_get(replica, ip, ADMIN_TOKEN)

    throttled = [
        line
        for line in replica.lines()
        if line.get("event") == "admin_auth_throttled" and line.get("clientIp") == ip
    ]

    assert [(e["level"], e["reason"]) for e in throttled] == [("warning", "throttled")]


def test_no_output_holds_the_presented_token_or_any_part_or_digest_of_it(
    replica: Replica, ip: str
) -> None:
    presented = wrong_token()
    digest = hashlib.sha256(presented.encode()).hexdigest()
    answers = [admin_get(replica, ip, presented).text for _ in range(ALLOWANCE + 1)]

    written = replica.log.read_text(encoding="utf-8") + "".join(answers)

    for fragment in (presented, presented[:8], presented[-8:], digest[:8], digest[-8:]):
        assert fragment not in written


@pytest.mark.parametrize(
    ("token", "reason"), [("wrong", "invalid"), (None, "missing")], ids=["invalid", "missing"]
)
def test_each_refusal_is_counted_by_reason(
    replica: Replica, ip: str, token: str | None, reason: str
) -> None:
    before = refusals(replica, reason)

    admin_get(replica, ip, token)

    assert refusals(replica, reason) == before + 1


def test_a_throttled_request_is_counted(replica: Replica, ip: str) -> None:
    spend_allowance(replica, ip)
    before = refusals(replica, "throttled")

    admin_get(replica, ip, ADMIN_TOKEN)

    assert refusals(replica, "throttled") == before + 1
