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
