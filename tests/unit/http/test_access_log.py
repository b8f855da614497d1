"""The access log around a bare ASGI app: the client's address as the trusted-proxy
rules decide it, and a line even when the app fails before answering."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest

from token_service.http.access_log import AccessLog, ProbeLogging
from token_service.http.client_ip import ProxyHeader


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _fail(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("before any answer")


def _scope(peer: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/v1/thing",
        "path_template": "/v1/thing",
        "headers": list(headers),
        "client": (peer, 40000),
    }


def _middleware(app: Any, trusted: str = "10.0.0.0/8") -> Any:
    log = AccessLog(
        probes=ProbeLogging.OFF,
        probe_sample_rate=0.0,
        trusted_proxies=[ipaddress.ip_network(trusted)],
        proxy_header=ProxyHeader.X_FORWARDED_FOR,
    )

    async def logged(scope: Any, receive: Any, send: Any) -> None:
        await log(scope, receive, send, app)

    return logged


async def _sent(message: Any) -> None:
    return None


async def _nothing() -> Any:
    return {"type": "http.disconnect"}


async def test_behind_a_trusted_proxy_the_client_is_the_address_it_forwards(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="token_service.access")

    await _middleware(_answer)(
        _scope("10.1.2.3", (b"x-forwarded-for", b"203.0.113.9")), _nothing, _sent
    )

    (record,) = caplog.records
    assert record.clientIp == "203.0.113.9"  # type: ignore[attr-defined]


async def test_from_an_untrusted_peer_a_forwarded_address_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="token_service.access")

    await _middleware(_answer)(
        _scope("198.51.100.7", (b"x-forwarded-for", b"203.0.113.9")), _nothing, _sent
    )

    (record,) = caplog.records
    assert record.clientIp == "198.51.100.7"  # type: ignore[attr-defined]


async def test_an_app_failing_before_it_answers_is_logged_as_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="token_service.access")

    with pytest.raises(RuntimeError):
        await _middleware(_fail)(_scope("198.51.100.7"), _nothing, _sent)

    (record,) = caplog.records
    assert record.status == 500  # type: ignore[attr-defined]
    assert record.levelno == logging.WARNING
