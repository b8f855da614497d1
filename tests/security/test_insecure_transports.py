"""Keys and credentials fetched in clear (issue 19, item 8).

A JWKS URL in plain `http://` to a host that is not loopback lets anyone on the network
path replace the provider's keys, and so sign a token for any user: it is a configuration
error (exit 2, the variable named) unless `TOKEN_SERVICE_AUTH_ALLOW_INSECURE_JWKS=true`
says it is deliberate (an in-cluster provider without TLS), which is then warned about at
start-up. At run time, only the configured URL is fetched: a redirect is never followed.
The issuer is only compared, never fetched (there is no discovery), so its scheme carries
nothing. Redis, IVS and Secrets Manager URLs in clear to another host are warned about,
not refused (Redis without TLS inside a VPC, the emulator in a Compose network)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.processes import background, run_cli, wait_for_http
from tests.support.redis_server import free_port
from token_service.auth import JwksCache
from token_service.bootstrap.app import create_app
from token_service.config import load_settings
from token_service.errors import ConfigurationError

SECRET = "transports-shared-secret-" + "t" * 32
OIDC = {"TOKEN_SERVICE_AUTH_ISSUER": "https://idp.example", "TOKEN_SERVICE_AUTH_AUDIENCE": "api"}
PASSWORD = "hunter2-do-not-print"

REMOTE_PLAIN_JWKS = {
    "a name": "http://idp.example.com/.well-known/jwks.json",
    "an in-cluster name": "http://keycloak:8080/realms/app/protocol/openid-connect/certs",
    "a private address": "http://10.0.0.5/jwks",
    "an IPv6 address": "http://[2001:db8::1]/jwks",
    "a name that looks like loopback": "http://127.0.0.1.nip.io/jwks",
    "an upper-case scheme": "HTTP://idp.example.com/jwks",
}

LOCAL_OR_TLS_JWKS = {
    "https": "https://idp.example.com/.well-known/jwks.json",
    "127.0.0.1": "http://127.0.0.1:8080/jwks",
    "elsewhere in 127/8": "http://127.5.6.7/jwks",
    "localhost": "http://localhost:8080/jwks",
    "::1": "http://[::1]:8080/jwks",
}


def _problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(OIDC | env)
    return list(caught.value.problems)


# ---------------------------------------------------------------- the JWKS URL at start-up


@pytest.mark.parametrize("url", REMOTE_PLAIN_JWKS.values(), ids=REMOTE_PLAIN_JWKS.keys())
def test_a_plain_jwks_url_to_another_host_is_a_configuration_error(url: str) -> None:
    problems = _problems({"TOKEN_SERVICE_AUTH_JWKS_URL": url})

    assert [p.split(":")[0] for p in problems] == ["TOKEN_SERVICE_AUTH_JWKS_URL"]
    assert "TOKEN_SERVICE_AUTH_ALLOW_INSECURE_JWKS" in problems[0]


@pytest.mark.parametrize("url", LOCAL_OR_TLS_JWKS.values(), ids=LOCAL_OR_TLS_JWKS.keys())
def test_a_jwks_url_over_tls_or_to_loopback_is_accepted(url: str) -> None:
    settings = load_settings(OIDC | {"TOKEN_SERVICE_AUTH_JWKS_URL": url})

    assert settings.auth.jwks_url == url


@pytest.mark.parametrize("url", REMOTE_PLAIN_JWKS.values(), ids=REMOTE_PLAIN_JWKS.keys())
def test_the_opt_in_accepts_a_plain_jwks_url(url: str) -> None:
    opt_in = {"TOKEN_SERVICE_AUTH_ALLOW_INSECURE_JWKS": "true"}
    settings = load_settings(OIDC | opt_in | {"TOKEN_SERVICE_AUTH_JWKS_URL": url})

    assert settings.auth.allow_insecure_jwks


def test_a_malformed_opt_in_is_named() -> None:
    problems = _problems(
        {
            "TOKEN_SERVICE_AUTH_JWKS_URL": "https://idp.example.com/jwks",
            "TOKEN_SERVICE_AUTH_ALLOW_INSECURE_JWKS": "perhaps",
        }
    )

    assert [p.split(":")[0] for p in problems] == ["TOKEN_SERVICE_AUTH_ALLOW_INSECURE_JWKS"]


def test_a_plain_issuer_is_not_refused_since_it_is_never_fetched() -> None:
    settings = load_settings(
        {
            "TOKEN_SERVICE_AUTH_JWKS_URL": "https://idp.example.com/jwks",
            "TOKEN_SERVICE_AUTH_ISSUER": "http://keycloak:8080/realms/app",
            "TOKEN_SERVICE_AUTH_AUDIENCE": "api",
        }
    )

    assert settings.auth.issuer == "http://keycloak:8080/realms/app"


def test_serve_with_a_plain_jwks_url_exits_2_naming_the_variable(tmp_path: Path) -> None:
    env = OIDC | {
        "TOKEN_SERVICE_AUTH_JWKS_URL": REMOTE_PLAIN_JWKS["a name"],
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path),
    }

    result = run_cli("serve", env=env)

    assert result.returncode == 2, result.stderr
    assert "TOKEN_SERVICE_AUTH_JWKS_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_the_opt_in_starts_and_warns(module_env: dict[str, str]) -> None:
    port = free_port()
    env = (
        module_env
        | OIDC
        | {
            # `.invalid` never resolves (RFC 6761): the first fetch fails at once, in the
            # background, and the service starts anyway.
            "TOKEN_SERVICE_AUTH_JWKS_URL": "http://idp.invalid/jwks",
            "TOKEN_SERVICE_AUTH_ALLOW_INSECURE_JWKS": "true",
            "TOKEN_SERVICE_LOG_FORMAT": "json",
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret",
        }
    )
    with background("serve", "--port", str(port), env=env) as proc:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        proc.terminate()
        output, _ = proc.communicate(timeout=30)

    warnings = [
        entry
        for entry in (json.loads(line) for line in output.splitlines() if line.startswith("{"))
        if entry.get("event") == "insecure_transport"
    ]
    assert [(w["level"], w["setting"]) for w in warnings] == [
        ("warning", "TOKEN_SERVICE_AUTH_JWKS_URL")
    ]


# ---------------------------------------------------------------- the JWKS at run time


def _jwk() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return jwk | {"kid": "attacker", "use": "sig"}


async def test_a_redirect_from_the_jwks_url_is_never_followed() -> None:
    # Even through a client that follows redirects: the keys come from the configured URL.
    asked: list[str] = []

    def provider(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.host == "idp.example.com":
            return httpx.Response(302, headers={"Location": "http://attacker.example/jwks"})
        return httpx.Response(200, json={"keys": [_jwk()]})

    transport = httpx.MockTransport(provider)
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as http:
        cache = JwksCache("https://idp.example.com/jwks", http)
        await cache.start()
        await cache.close()

    assert asked == ["https://idp.example.com/jwks"]
    assert not cache.ready
    assert cache.last_error == "HTTP 302"


async def test_the_key_cache_itself_refuses_a_plain_url_to_another_host() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ConfigurationError):
            JwksCache(REMOTE_PLAIN_JWKS["a name"], http)


# ---------------------------------------------------------------- other URLs: a warning


CLEAR_TO_REMOTE = {
    "TOKEN_SERVICE_REDIS_URL": f"redis://:{PASSWORD}@redis.internal:6379/0",
    "TOKEN_SERVICE_IVS_ENDPOINT_URL": "http://emulator:4566",
    "TOKEN_SERVICE_SECRETSMANAGER_ENDPOINT_URL": "http://localstack:4566",
}
NOT_IN_CLEAR = {
    "TOKEN_SERVICE_REDIS_URL": f"rediss://:{PASSWORD}@redis.internal:6379/0",
    "TOKEN_SERVICE_IVS_ENDPOINT_URL": "http://127.0.0.1:4566",
    "TOKEN_SERVICE_SECRETSMANAGER_ENDPOINT_URL": "https://secretsmanager.example.com",
}


def _warnings(caplog: pytest.LogCaptureFixture, env: dict[str, str]) -> list[logging.LogRecord]:
    settings = load_settings({"TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET} | env)
    with caplog.at_level(logging.WARNING):
        create_app(settings)  # built, not started: nothing connects
    return [r for r in caplog.records if getattr(r, "event", None) == "insecure_transport"]


@pytest.mark.parametrize("variable", CLEAR_TO_REMOTE)
def test_a_url_in_clear_to_another_host_is_accepted_with_a_warning_naming_it(
    caplog: pytest.LogCaptureFixture, variable: str
) -> None:
    warnings = _warnings(caplog, {variable: CLEAR_TO_REMOTE[variable]})

    assert [getattr(w, "setting", None) for w in warnings] == [variable]
    assert warnings[0].levelno == logging.WARNING
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("variable", NOT_IN_CLEAR)
def test_a_url_over_tls_or_to_loopback_is_not_warned_about(
    caplog: pytest.LogCaptureFixture, variable: str
) -> None:
    assert _warnings(caplog, {variable: NOT_IN_CLEAR[variable]}) == []
