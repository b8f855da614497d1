"""`ivs-realtime-emulator` (and `token-service emulator`): flags, and running the emulator in
the foreground under uvicorn."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from ivs_realtime_emulator import model
from ivs_realtime_emulator.app import create_emulator_app
from ivs_realtime_emulator.faults import (
    ALL_OPERATIONS,
    FaultSpec,
    FaultSpecError,
    check_latency,
    check_rate,
)
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.persistence import StateFileError

DEFAULT_PORT = 4566


def _rate(text: str) -> float:
    try:
        return check_rate("the rate", float(text))
    except (ValueError, FaultSpecError) as error:
        raise argparse.ArgumentTypeError(f"{text!r}: a number from 0 to 1 expected") from error


def _latency(text: str) -> int:
    try:
        return check_latency(int(text))
    except (ValueError, FaultSpecError) as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from error


def _account(text: str) -> str:
    if not (text.isdigit() and len(text) == 12):
        raise argparse.ArgumentTypeError(f"{text!r}: an account ID is 12 digits")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free port)")
    parser.add_argument(
        "--account-id", type=_account, default=EmulatorOptions.account_id, help="account in ARNs"
    )
    parser.add_argument(
        "--no-quotas",
        dest="quotas",
        action="store_false",
        help="do not enforce IVS request rates (no ThrottlingException from quotas)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="load state from FILE and save every change to it",
    )
    faults = parser.add_argument_group(
        "faults (for every operation; change at run time with POST /_emulator/faults)"
    )
    faults.add_argument("--latency-ms", type=_latency, default=0, help="added latency per request")
    faults.add_argument("--error-rate", type=_rate, default=0.0, help="share of requests failing")
    faults.add_argument(
        "--error",
        default=FaultSpec.error,
        help="error code of failing requests (default InternalServerException)",
    )
    faults.add_argument("--throttle-rate", type=_rate, default=0.0, help="share throttled")
    faults.add_argument("--fault-seed", type=int, help="seed the fault dice (reproducible runs)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )


def options_from(args: argparse.Namespace) -> EmulatorOptions:
    """EmulatorOptions from parsed flags; ValueError names a bad `--error`."""
    if args.error not in model.error_codes():
        raise ValueError(f"--error must be one of: {', '.join(sorted(model.error_codes()))}")
    spec = FaultSpec(
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        error=args.error,
        throttle_rate=args.throttle_rate,
    )
    faults = {} if spec == FaultSpec(error=args.error) else {ALL_OPERATIONS: spec}
    return EmulatorOptions(
        account_id=args.account_id,
        quotas_enabled=args.quotas,
        state_file=args.state,
        faults=faults,
        fault_seed=args.fault_seed,
    )


def run(args: argparse.Namespace, prog: str = "ivs-realtime-emulator") -> int:
    """Serve until interrupted; returns the exit status. `prog` names the command in errors."""
    try:
        options = options_from(args)
        app = create_emulator_app(options)
    except (ValueError, StateFileError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level)
    try:
        # Bound here, not by uvicorn, to print the real port when --port 0 picked one.
        sock = config.bind_socket()
    except SystemExit:  # uvicorn has logged why (address in use, permission)
        return 1
    # Listening before the banner: clients that read it may connect at once, and
    # wait in the backlog until uvicorn accepts.
    sock.listen(config.backlog)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{sock.getsockname()[1]}"
    print(
        f"IVS real-time emulator on {url} (account {options.account_id}, "
        f"quotas {'on' if options.quotas_enabled else 'off'})\n"
        f"  boto3:   boto3.client('ivs-realtime', endpoint_url='{url}')\n"
        f"  AWS CLI: aws ivs-realtime --endpoint-url {url} list-stages",
        flush=True,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "ivs-realtime-emulator") -> int:
    """The `ivs-realtime-emulator` console script (and `token-service emulator`: `prog`)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="An emulator of the Amazon IVS real-time control plane, for AWS SDKs.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args, prog=prog)
