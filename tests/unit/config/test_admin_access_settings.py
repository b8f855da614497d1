"""The settings of the admin routes' protection and of where operational routes answer."""

from __future__ import annotations

from token_service.config import load_settings
from token_service.domain import Rate
from token_service.errors import ConfigurationError

SECRET = {"TOKEN_SERVICE_AUTH_SHARED_SECRET": "admin-settings-secret-" + "s" * 32}


def _problems(env: dict[str, str]) -> list[str]:
    try:
        load_settings(SECRET | env)
    except ConfigurationError as exc:
        return list(exc.problems)
    return []


def test_admin_auth_failures_default_to_ten_a_minute_per_ip() -> None:
    assert load_settings(SECRET).limits.admin_auth_failures == Rate(10, 60)


def test_admin_auth_failure_rate_takes_the_rate_syntax_with_a_burst() -> None:
    settings = load_settings(SECRET | {"TOKEN_SERVICE_ADMIN_AUTH_FAILURE_RATE": "5/hour;burst=3"})

    assert settings.limits.admin_auth_failures == Rate(5, 3600, burst=3)


def test_a_malformed_admin_auth_failure_rate_is_named() -> None:
    problems = _problems({"TOKEN_SERVICE_ADMIN_AUTH_FAILURE_RATE": "ten"})

    assert [p.split(":")[0] for p in problems] == ["TOKEN_SERVICE_ADMIN_AUTH_FAILURE_RATE"]


def test_metrics_are_public_by_default_on_a_single_port() -> None:
    assert load_settings(SECRET).server.public_metrics is True


def test_metrics_leave_the_service_port_by_default_with_an_admin_port() -> None:
    settings = load_settings(SECRET | {"TOKEN_SERVICE_ADMIN_PORT": "8081"})

    assert settings.server.public_metrics is False


def test_metrics_public_says_so_whatever_the_ports() -> None:
    settings = load_settings(
        SECRET | {"TOKEN_SERVICE_ADMIN_PORT": "8081", "TOKEN_SERVICE_METRICS_PUBLIC": "true"}
    )

    assert settings.server.public_metrics is True


def test_the_schema_is_public_by_default_and_may_be_made_private() -> None:
    assert load_settings(SECRET).server.schema_public is True
    private = load_settings(SECRET | {"TOKEN_SERVICE_SCHEMA_PUBLIC": "false"})
    assert private.server.schema_public is False


def test_malformed_public_switches_are_named() -> None:
    problems = _problems(
        {"TOKEN_SERVICE_METRICS_PUBLIC": "maybe", "TOKEN_SERVICE_SCHEMA_PUBLIC": "sometimes"}
    )

    assert sorted(p.split(":")[0] for p in problems) == [
        "TOKEN_SERVICE_METRICS_PUBLIC",
        "TOKEN_SERVICE_SCHEMA_PUBLIC",
    ]
