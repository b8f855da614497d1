"""Malformed URL-valued settings are configuration errors (exit 2, the variable named), never
a traceback, and a password in the URL is never repeated."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import run_cli
from token_service.config import load_settings
from token_service.errors import ConfigurationError

PASSWORD = "hunter2-do-not-print"
SECRET = "config-shared-secret-" + "c" * 32

MALFORMED_REDIS_URLS = {
    "port not a number": f"redis://:{PASSWORD}@redis:notaport/0",
    "port out of range": f"redis://:{PASSWORD}@redis:99999/0",
    "port zero": f"redis://:{PASSWORD}@redis:0/0",
    "unclosed IPv6 bracket": f"redis://:{PASSWORD}@[::1:6379/0",
    "no host": "redis://",
    "unknown scheme": f"http://:{PASSWORD}@redis:6379",
    "no scheme": f":{PASSWORD}@redis:6379",
    "query redis-py refuses": f"redis://:{PASSWORD}@redis:6379/0?socket_timeout=soon",
    "cluster with a bad port": f"redis+cluster://:{PASSWORD}@redis:70000",
}

MALFORMED_HTTP_URLS = {
    "port not a number": f"https://user:{PASSWORD}@host:notaport",
    "port out of range": f"https://user:{PASSWORD}@host:99999",
    "unclosed IPv6 bracket": "https://[::1",
    "no host": "https://:443",
    "unknown scheme": "ftp://host",
}

URL_SETTINGS = (
    "TOKEN_SERVICE_IVS_ENDPOINT_URL",
    "TOKEN_SERVICE_AUTH_JWKS_URL",
    "TOKEN_SERVICE_SECRETSMANAGER_ENDPOINT_URL",
)


def _problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET, **env})
    return list(caught.value.problems)


@pytest.mark.parametrize("url", MALFORMED_REDIS_URLS.values(), ids=MALFORMED_REDIS_URLS.keys())
def test_a_malformed_redis_url_is_a_configuration_error_naming_the_variable(url: str) -> None:
    problems = _problems({"TOKEN_SERVICE_REDIS_URL": url})

    assert [p.split(":")[0] for p in problems] == ["TOKEN_SERVICE_REDIS_URL"]
    assert not any(PASSWORD in p for p in problems)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:pw@redis:6379/0",
        "rediss://redis.example.com:6380/1",
        "redis://[::1]:6379",
        "unix:///run/redis/redis.sock",
        "redis+cluster://redis:7000",
    ],
)
def test_a_well_formed_redis_url_is_accepted(url: str) -> None:
    settings = load_settings(
        {"TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET, "TOKEN_SERVICE_REDIS_URL": url}
    )

    assert settings.redis.url is not None
    assert settings.redis.url.reveal() == url


@pytest.mark.parametrize("variable", URL_SETTINGS)
@pytest.mark.parametrize("url", MALFORMED_HTTP_URLS.values(), ids=MALFORMED_HTTP_URLS.keys())
def test_every_url_setting_refuses_a_malformed_url_by_name(variable: str, url: str) -> None:
    env = {variable: url}
    if variable == "TOKEN_SERVICE_AUTH_JWKS_URL":
        env |= {"TOKEN_SERVICE_AUTH_ISSUER": "https://idp", "TOKEN_SERVICE_AUTH_AUDIENCE": "api"}

    problems = _problems(env)

    assert [p.split(":")[0] for p in problems] == [variable]
    assert not any(PASSWORD in p for p in problems)


def test_serve_with_a_malformed_redis_url_exits_2_without_a_traceback_or_the_password(
    tmp_path: Path,
) -> None:
    env = {
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "TOKEN_SERVICE_REDIS_URL": MALFORMED_REDIS_URLS["port not a number"],
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path),
    }

    result = run_cli("serve", env=env)

    assert result.returncode == 2, result.stderr
    assert "TOKEN_SERVICE_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
