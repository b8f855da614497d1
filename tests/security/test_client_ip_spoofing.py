"""A client behind a trusted proxy cannot choose its own IP (issue 19, item 2).

A real `token-service serve` process on loopback with `TOKEN_SERVICE_TRUSTED_PROXIES` set to
the test's own address plays the service behind a load balancer: each request carries what
the proxy writes (the client's real address appended to `X-Forwarded-For`) plus what a
hostile client adds before it reaches the proxy, which ALB and nginx pass on untouched: a
`Forwarded` header of its own, or an `X-Forwarded-For` line of its own ahead of the proxy's.
Neither may move the client to another per-IP bucket, or into the mapping record and the
audit line as its `clientIp`. Redis is real, as in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.conftest import SHARED_SECRET, bearer
from tests.security.conftest import serving_logged
from token_service.auth import mint_user_token
from token_service.config import load_settings
from token_service.errors import ConfigurationError

URL = "/v1/participant-tokens"
ADMIN = "spoofing-admin-token-0123456789"
#: Room for two tokens per address: the third is refused.
IP_LIMIT = "2/minute"


def _env(module_env: dict[str, str], redis_url: str, trusted: str) -> dict[str, str]:
    return module_env | {
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN,
        "TOKEN_SERVICE_REDIS_URL": redis_url,
        "TOKEN_SERVICE_TRUSTED_PROXIES": trusted,
        "TOKEN_SERVICE_RATE_LIMIT_IP": IP_LIMIT,
    }


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spoofing") / "service.log"


@pytest.fixture(scope="module")
def behind_proxy(
    module_env: dict[str, str], module_redis_url: str, log_file: Path
) -> Iterator[str]:
    """The service believing this machine (the test) as its proxy, with the default
    `TOKEN_SERVICE_TRUSTED_PROXY_HEADER` (`x-forwarded-for`)."""
    with serving_logged(_env(module_env, module_redis_url, "127.0.0.1/32"), log_file) as base:
        yield base


def _user(sub: str) -> dict[str, str]:
    return bearer(mint_user_token(SHARED_SECRET.encode(), sub=sub, roles=["publisher"]))


def _issue(base: str, stage_arn: str, sub: str, headers: list[tuple[str, str]]) -> httpx.Response:
    """A token request whose header lines are sent as given, in order, repeats kept."""
    lines = [*_user(sub).items(), *headers]
    return httpx.post(f"{base}{URL}", json={"stageArn": stage_arn}, headers=lines, timeout=10)


def test_a_forged_forwarded_header_does_not_escape_the_per_ip_limit(
    behind_proxy: str, stage_arn: str
) -> None:
    statuses = [
        _issue(
            behind_proxy,
            stage_arn,
            f"forwarded-{i}",
            [("Forwarded", f"for=198.51.100.{i}"), ("X-Forwarded-For", "203.0.113.10")],
        ).status_code
        for i in range(3)
    ]

    assert statuses == [201, 201, 429]


def test_a_forged_leading_x_forwarded_for_line_does_not_escape_the_per_ip_limit(
    behind_proxy: str, stage_arn: str
) -> None:
    statuses = [
        _issue(
            behind_proxy,
            stage_arn,
            f"leading-line-{i}",
            [("X-Forwarded-For", f"198.51.100.{i}"), ("X-Forwarded-For", "203.0.113.11")],
        ).status_code
        for i in range(3)
    ]

    assert statuses == [201, 201, 429]


def test_the_mapping_record_and_the_audit_line_hold_the_real_client_ip(
    behind_proxy: str, stage_arn: str, log_file: Path
) -> None:
    forged = [
        ("Forwarded", 'for="[2001:db8::666]"'),
        ("X-Forwarded-For", "198.51.100.66"),
        ("X-Forwarded-For", "203.0.113.12"),
    ]
    issued = _issue(behind_proxy, stage_arn, "audited", forged)
    assert issued.status_code == 201, issued.text
    participant = issued.json()["participantId"]

    record = httpx.get(f"{behind_proxy}/admin/participants/{participant}", headers=bearer(ADMIN))
    audit = [
        line
        for line in map(json.loads, log_file.read_text().splitlines())
        if line.get("event") == "token_issued" and line.get("participantId") == participant
    ]

    assert record.status_code == 200, record.text
    assert record.json()["clientIp"] == "203.0.113.12"
    assert [line["clientIp"] for line in audit] == ["203.0.113.12"]


def test_an_exchange_records_the_real_client_ip_too(behind_proxy: str, stage_arn: str) -> None:
    """The exchange route shares the caller's address with the token route."""
    proxied = [("X-Forwarded-For", "203.0.113.14")]
    issued = _issue(behind_proxy, stage_arn, "exchanger", proxied)
    assert issued.status_code == 201, issued.text
    participant = issued.json()["participantId"]

    forged = [
        ("Forwarded", "for=198.51.100.77"),
        ("X-Forwarded-For", "198.51.100.78"),
        ("X-Forwarded-For", "203.0.113.15"),
    ]
    exchanged = httpx.post(
        f"{behind_proxy}{URL}/{participant}/exchange",
        json={},
        headers=[*_user("exchanger").items(), *forged],
        timeout=10,
    )
    assert exchanged.status_code == 200, exchanged.text
    record = httpx.get(f"{behind_proxy}/admin/participants/{participant}", headers=bearer(ADMIN))

    assert record.json()["clientIp"] == "203.0.113.15"


def test_forwarding_headers_from_a_peer_that_is_no_trusted_proxy_are_ignored(
    module_env: dict[str, str], module_redis_url: str, stage_arn: str, tmp_path: Path
) -> None:
    """The proxies trusted are elsewhere: the socket peer (loopback) is the client, whatever
    the request says. (This also shows uvicorn's own forwarding support is off: by default it
    believes `X-Forwarded-For` from 127.0.0.1 and would rewrite the peer.)"""
    env = _env(module_env, module_redis_url, "10.0.0.0/8")
    with serving_logged(env, tmp_path / "service.log") as base:
        issued = _issue(
            base,
            stage_arn,
            "untrusted-peer",
            [
                ("X-Forwarded-For", "203.0.113.13"),
                ("Forwarded", "for=203.0.113.13"),
                ("X-Real-IP", "203.0.113.13"),
            ],
        )
        assert issued.status_code == 201, issued.text
        record = httpx.get(
            f"{base}/admin/participants/{issued.json()['participantId']}", headers=bearer(ADMIN)
        )

    assert record.json()["clientIp"] == "127.0.0.1"


def test_an_unknown_trusted_proxy_header_is_a_configuration_error_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(
            {
                "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
                "TOKEN_SERVICE_TRUSTED_PROXY_HEADER": "x-client-ip",
            }
        )

    assert [problem.split(":")[0] for problem in refused.value.problems] == [
        "TOKEN_SERVICE_TRUSTED_PROXY_HEADER"
    ]


# -- the same mistake elsewhere: a header read by its first line ------------------------


def test_several_request_id_lines_are_no_request_id(behind_proxy: str) -> None:
    """The first would be the client's own, ahead of a proxy's: a fresh id instead."""
    lines = [("X-Request-Id", "client-chosen-id-1"), ("X-Request-Id", "proxy-given-id-02")]
    response = httpx.get(f"{behind_proxy}/healthz", headers=lines)

    assert response.headers["x-request-id"] not in {"client-chosen-id-1", "proxy-given-id-02"}


def test_one_sane_request_id_is_kept(behind_proxy: str) -> None:
    response = httpx.get(f"{behind_proxy}/healthz", headers={"X-Request-Id": "one-sane-id-0001"})

    assert response.headers["x-request-id"] == "one-sane-id-0001"


def test_several_content_type_lines_are_415_naming_the_header(
    behind_proxy: str, stage_arn: str
) -> None:
    """A WAF reading the last line would judge the body as text, the service the first as
    JSON: refused, as an `Authorization` header given twice is."""
    response = httpx.post(
        f"{behind_proxy}{URL}",
        content=json.dumps({"stageArn": stage_arn}).encode(),
        headers=[
            *_user("two-content-types").items(),
            ("Content-Type", "application/json"),
            ("Content-Type", "text/plain"),
        ],
    )

    assert response.status_code == 415, response.text
    assert response.json()["errors"] == [
        {"field": "Content-Type", "message": "given more than once"}
    ]
