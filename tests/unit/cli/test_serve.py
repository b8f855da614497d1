"""token_service/cli/serve.py: listener settings, and the Prometheus multiprocess directory."""

from __future__ import annotations

import dataclasses
import pickle
import socket
from pathlib import Path

import pytest

from token_service.bootstrap.server import uvicorn_config
from token_service.cli.serve import (
    APP_FACTORY,
    MULTIPROC_ENV,
    Listen,
    prepare_multiprocess_metrics,
    run,
)
from token_service.cli.workers import bind
from token_service.config import load_settings
from token_service.errors import ConfigurationError
from token_service.http.head_limits import ConnectionTimeouts


def test_command_line_values_override_the_environment() -> None:
    settings = load_settings({"TOKEN_SERVICE_PORT": "9000", "TOKEN_SERVICE_WORKERS": "3"})
    listen = Listen.of(settings, port=9100)
    assert (listen.host, listen.port, listen.workers) == ("127.0.0.1", 9100, 3)


def test_environment_values_apply_without_flags() -> None:
    settings = load_settings({"TOKEN_SERVICE_HOST": "::1", "TOKEN_SERVICE_ADMIN_PORT": "9001"})
    listen = Listen.of(settings)
    assert (listen.host, listen.port, listen.admin_port) == ("::1", 8080, 9001)


@pytest.fixture
def no_multiproc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset for the test, and unset again after it whatever the code under test set
    (a leftover would switch later tests' /metrics to multiprocess mode)."""
    monkeypatch.setenv(MULTIPROC_ENV, "placeholder")
    monkeypatch.delenv(MULTIPROC_ENV)


def test_one_worker_without_a_directory_needs_no_multiprocess_mode(
    no_multiproc_env: None,
) -> None:
    assert prepare_multiprocess_metrics(1) is None


def test_several_workers_get_a_fresh_directory(no_multiproc_env: None) -> None:
    directory = prepare_multiprocess_metrics(2)
    assert directory is not None
    assert directory.is_dir()
    assert not list(directory.iterdir())


def test_an_operators_directory_is_used_and_emptied_of_earlier_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("kept")
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    assert prepare_multiprocess_metrics(2) == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_bind_returns_a_bound_socket_on_the_requested_address() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.family == socket.AF_INET
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


def test_bind_uses_ipv6_for_an_ipv6_host() -> None:
    try:
        sock = bind("::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert sock.family == socket.AF_INET6
    finally:
        sock.close()


def test_the_connection_timeouts_reach_uvicorn_and_its_protocol() -> None:
    settings = load_settings(
        {
            "TOKEN_SERVICE_HTTP_KEEP_ALIVE_SECONDS": "90",
            "TOKEN_SERVICE_HTTP_HEAD_TIMEOUT_SECONDS": "4",
            "TOKEN_SERVICE_HTTP_BODY_TIMEOUT_SECONDS": "6",
            "TOKEN_SERVICE_HTTP_SEND_TIMEOUT_SECONDS": "8",
        }
    )
    listen = Listen.of(settings)

    config = uvicorn_config(
        APP_FACTORY,
        host=listen.host,
        port=listen.port,
        workers=2,
        shutdown_timeout_seconds=listen.shutdown_timeout_seconds,
        keep_alive_seconds=listen.keep_alive_seconds,
        head_timeout_seconds=listen.head_timeout_seconds,
        body_timeout_seconds=listen.body_timeout_seconds,
        send_timeout_seconds=listen.send_timeout_seconds,
    )

    assert config.timeout_keep_alive == 90
    assert config.http.keywords["timeouts"] == ConnectionTimeouts(
        head_seconds=4, body_seconds=6, send_seconds=8
    )
    # Spawned workers receive the configuration pickled.
    assert pickle.loads(pickle.dumps(config.http)).keywords == config.http.keywords  # noqa: S301


def test_an_admin_port_in_use_is_a_configuration_error_naming_its_setting() -> None:
    settings = load_settings({})
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        busy = other.getsockname()[1]
        listen = dataclasses.replace(Listen.of(settings), port=0, admin_port=busy)
        with pytest.raises(ConfigurationError) as refused:
            run(listen, app=object())
    (problem,) = refused.value.problems
    assert problem.startswith(f"TOKEN_SERVICE_ADMIN_PORT: cannot listen on 127.0.0.1:{busy}")
