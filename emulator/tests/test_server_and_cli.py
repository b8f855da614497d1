"""`EmulatorServer` and the `token-service emulator` flags."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import httpx
import pytest
from ivs_realtime_emulator import cli
from ivs_realtime_emulator.faults import FaultSpec
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_server_listens_on_a_free_port_and_stops() -> None:
    server = EmulatorServer().start()
    url = server.url

    assert server.port > 0
    assert httpx.get(f"{url}/_emulator/health").status_code == 200
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_emulator/health")


def test_two_servers_have_separate_state(emulator_boto3_session) -> None:
    with EmulatorServer() as first, EmulatorServer() as second:
        emulator_boto3_session.client("ivs-realtime", endpoint_url=first.url).create_stage()

        assert (
            emulator_boto3_session.client("ivs-realtime", endpoint_url=second.url).list_stages()[
                "stages"
            ]
            == []
        )


def test_server_on_a_busy_port_fails_to_start(emulator) -> None:
    with pytest.raises(RuntimeError, match="could not start"):
        EmulatorServer(port=emulator.port).start()


def test_cli_defaults() -> None:
    args = _parse()

    assert (args.host, args.port) == ("127.0.0.1", 4566)
    assert cli.options_from(args) == EmulatorOptions()


def test_cli_flags_become_options() -> None:
    args = _parse("--no-quotas", "--state", "s.json", "--account-id", "111122223333")

    options = cli.options_from(args)

    assert options.quotas_enabled is False
    assert str(options.state_file) == "s.json"
    assert options.account_id == "111122223333"


def test_cli_fault_flags_apply_to_every_operation() -> None:
    args = _parse("--latency-ms", "50", "--error-rate", "0.1", "--throttle-rate", "0.2")

    options = cli.options_from(args)

    assert options.faults == {"*": FaultSpec(latency_ms=50, error_rate=0.1, throttle_rate=0.2)}


@pytest.mark.parametrize(
    "argv",
    [
        ("--error-rate", "2"),
        ("--throttle-rate", "x"),
        ("--latency-ms", "-1"),
        ("--account-id", "12"),
    ],
)
def test_cli_rejects_bad_values(argv, capsys) -> None:
    with pytest.raises(SystemExit):
        _parse(*argv)


def test_cli_run_rejects_an_unknown_error_code(capsys) -> None:
    status = cli.run(_parse("--error", "NoSuchError"))

    assert status == 2
    assert "--error" in capsys.readouterr().err


def test_cli_run_serves_until_terminated() -> None:
    script = (
        "import argparse, sys\n"
        "from ivs_realtime_emulator import cli\n"
        "parser = argparse.ArgumentParser()\n"
        "cli.add_arguments(parser)\n"
        "sys.exit(cli.run(parser.parse_args(sys.argv[1:])))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline())
        assert url is not None

        assert httpx.get(f"{url.group(0)}/_emulator/health").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
