"""How `serve` listens and stops, from the environment (TOKEN_SERVICE_HOST, _PORT, ...)."""

from __future__ import annotations

import pytest

from token_service.config import ServerSettings, load_settings
from token_service.errors import ConfigurationError


def test_defaults_are_one_local_listener() -> None:
    assert load_settings({}).server == ServerSettings(
        host="127.0.0.1", port=8080, workers=1, admin_port=None, shutdown_timeout_seconds=20
    )


def test_every_server_setting_comes_from_the_environment() -> None:
    server = load_settings(
        {
            "TOKEN_SERVICE_HOST": "::",
            "TOKEN_SERVICE_PORT": "9000",
            "TOKEN_SERVICE_WORKERS": "4",
            "TOKEN_SERVICE_ADMIN_PORT": "9001",
            "TOKEN_SERVICE_SHUTDOWN_TIMEOUT_SECONDS": "5",
        }
    ).server
    assert server == ServerSettings(
        host="::", port=9000, workers=4, admin_port=9001, shutdown_timeout_seconds=5
    )


def test_admin_port_equal_to_the_public_port_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"TOKEN_SERVICE_PORT": "9000", "TOKEN_SERVICE_ADMIN_PORT": "9000"})
    assert any("TOKEN_SERVICE_ADMIN_PORT" in p for p in caught.value.problems)


def test_bad_server_values_are_all_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            {
                "TOKEN_SERVICE_PORT": "http",
                "TOKEN_SERVICE_WORKERS": "0",
                "TOKEN_SERVICE_ADMIN_PORT": "70000",
                "TOKEN_SERVICE_SHUTDOWN_TIMEOUT_SECONDS": "-1",
            }
        )
    named = " ".join(caught.value.problems)
    for name in ("_PORT:", "_WORKERS", "_ADMIN_PORT", "_SHUTDOWN_TIMEOUT_SECONDS"):
        assert f"TOKEN_SERVICE{name}" in named


def test_connection_timeouts_default_to_a_keep_alive_above_an_albs_idle_timeout() -> None:
    server = load_settings({}).server
    assert server.keep_alive_seconds == 75
    assert server.keep_alive_seconds > 60, "an ALB's default idle timeout"
    assert (server.head_timeout_seconds, server.body_timeout_seconds) == (10, 10)
    assert server.send_timeout_seconds == 30


def test_connection_timeouts_come_from_the_environment() -> None:
    server = load_settings(
        {
            "TOKEN_SERVICE_HTTP_KEEP_ALIVE_SECONDS": "4100",
            "TOKEN_SERVICE_HTTP_HEAD_TIMEOUT_SECONDS": "5",
            "TOKEN_SERVICE_HTTP_BODY_TIMEOUT_SECONDS": "7",
            "TOKEN_SERVICE_HTTP_SEND_TIMEOUT_SECONDS": "60",
        }
    ).server
    assert (
        server.keep_alive_seconds,
        server.head_timeout_seconds,
        server.body_timeout_seconds,
        server.send_timeout_seconds,
    ) == (4100, 5, 7, 60)


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "forever", "7201"])
def test_a_keep_alive_out_of_bounds_is_refused_naming_it(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"TOKEN_SERVICE_HTTP_KEEP_ALIVE_SECONDS": value})
    assert caught.value.problems[0].startswith("TOKEN_SERVICE_HTTP_KEEP_ALIVE_SECONDS:")


def test_request_timeouts_out_of_bounds_are_all_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            {
                "TOKEN_SERVICE_HTTP_HEAD_TIMEOUT_SECONDS": "0",
                "TOKEN_SERVICE_HTTP_BODY_TIMEOUT_SECONDS": "301",
                "TOKEN_SERVICE_HTTP_SEND_TIMEOUT_SECONDS": "none",
            }
        )
    named = " ".join(caught.value.problems)
    for name in ("HEAD_TIMEOUT", "BODY_TIMEOUT", "SEND_TIMEOUT"):
        assert f"TOKEN_SERVICE_HTTP_{name}_SECONDS:" in named
