"""`token-service ...`: the entry point. Reads the environment, then calls the factories.

Commands: `serve`, `emulator`, `keys list|rotate|prepare|delete|revoke`,
`participants show|of-user|migrate`, `participant-token`, `user-token`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from token_service import package_version
from token_service.errors import ConfigurationError, DomainError, InvalidRequest

if TYPE_CHECKING:
    from token_service.config import Settings

EXIT_CONFIG = 2
EXIT_FAILED = 1


def _settings() -> Settings:
    """The settings from the environment. Imported here, not at the top, like every
    command's dependencies: `token-service emulator` then loads nothing of the service."""
    from token_service.cli.environment import environment
    from token_service.config import load_settings

    return load_settings(environment())


def _print_config_error(exc: ConfigurationError) -> None:
    print("token-service: invalid configuration:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)


def _serve(args: argparse.Namespace) -> int:
    if args.dev:
        if _emulator_cli() is None:
            print(f"token-service serve --dev: {NO_EMULATOR}", file=sys.stderr)
            return EXIT_CONFIG
        from token_service.cli.dev import run_dev
        from token_service.cli.environment import environment

        return run_dev(host=args.host or "127.0.0.1", port=args.port or 8080, env=environment())
    from token_service.bootstrap.keys import check_key_ring
    from token_service.cli import serve as server
    from token_service.config import check_can_serve
    from token_service.observability.logs import configure_logging

    # Validate once in the parent so a bad configuration fails before workers start.
    settings = _settings()
    check_can_serve(settings)
    check_key_ring(settings)
    listen = server.Listen.of(settings, host=args.host, port=args.port, workers=args.workers)
    if listen.admin_port == listen.port:
        raise ConfigurationError(
            [f"TOKEN_SERVICE_ADMIN_PORT: must differ from the public port {listen.port}"]
        )
    configure_logging(settings.logging.level, settings.logging.format)
    # Before any app exists: prometheus_client picks its value store at import.
    server.prepare_multiprocess_metrics(listen.workers)
    if listen.workers == 1:
        from token_service.bootstrap.app import create_app
        from token_service.bootstrap.heap import freeze_startup_heap

        app = create_app(settings)
        freeze_startup_heap()
        return server.run(listen, app)
    return server.run(listen)


#: Why `emulator` and `serve --dev` refuse to start in an install without the emulator.
NO_EMULATOR = (
    "the IVS real-time emulator is a development tool, not part of this install: "
    "`pip install ./emulator` from the repository (`make run` and `make test` install it)"
)


def _emulator_cli() -> ModuleType | None:
    """The emulator's command line, when the development install brought the emulator.
    Imported only to run it: it loads the emulator's web stack (~0.4 s), which no other
    command should pay for."""
    try:
        from ivs_realtime_emulator import cli
    except ModuleNotFoundError as missing:
        if missing.name != "ivs_realtime_emulator":
            raise
        return None
    return cli


def _emulator(argv: Sequence[str]) -> int:
    """`token-service emulator ARGS`: the emulator's own command line parses ARGS."""
    emulator_cli = _emulator_cli()
    if emulator_cli is None:
        print(f"token-service emulator: {NO_EMULATOR}", file=sys.stderr)
        return EXIT_CONFIG
    status: int = emulator_cli.main(argv, prog="token-service emulator")
    return status


def _run_async(make: Callable[[], Coroutine[Any, Any, int]]) -> int:
    return asyncio.run(make())


def _keys(args: argparse.Namespace) -> int:
    from token_service.cli.keys import run_keys_command

    settings = _settings()
    return _run_async(lambda: run_keys_command(settings, args))


def _participants(args: argparse.Namespace) -> int:
    from token_service.cli.participants import run_participants_command

    settings = _settings()
    return _run_async(lambda: run_participants_command(settings, args))


def _participant_token(args: argparse.Namespace) -> int:
    from token_service.cli.tokens import run_participant_token

    settings = _settings()
    return _run_async(lambda: run_participant_token(settings, args))


def _user_token(args: argparse.Namespace) -> int:
    from token_service.bootstrap.features import build_user_token_minter

    mint = build_user_token_minter(_settings())
    if mint is None:
        print(
            "token-service: user-token needs TOKEN_SERVICE_AUTH_SHARED_SECRET (or _FILE)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    roles = [r.strip() for r in args.roles.split(",") if r.strip()] if args.roles else []
    token = mint(args.sub, roles, args.ttl)
    # The token itself is the output: on stdout, with no trailing text to strip.
    print(token)
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _attribute(text: str) -> tuple[str, str]:
    """One `--attribute KEY=VALUE` (the value may hold `=`, and may be empty)."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, e.g. displayName=Ops; got {text!r}")
    return key, value


def _add_participant_token(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    participant_token = commands.add_parser(
        "participant-token",
        help="mint a participant token as an operator (a test, an incident); recorded in the "
        "mapping log (needs TOKEN_SERVICE_REDIS_URL); prints only the token",
    )
    participant_token.add_argument("--stage-arn", required=True, help="the stage to join")
    participant_token.add_argument(
        "--user-id", required=True, help="the app user the token is for (its user_id)"
    )
    participant_token.add_argument(
        "--issuer",
        default=None,
        help="whose user id: the issuer of the user's app tokens; default: none",
    )
    participant_token.add_argument(
        "--publish", action="store_true", help="PUBLISH (neither flag: PUBLISH and SUBSCRIBE)"
    )
    participant_token.add_argument(
        "--subscribe", action="store_true", help="SUBSCRIBE (neither flag: PUBLISH and SUBSCRIBE)"
    )
    participant_token.add_argument(
        "--duration",
        type=int,
        default=None,
        metavar="MINUTES",
        help="lifetime, 1 to the longest the policy grants (at most 20160); default 60 or that",
    )
    participant_token.add_argument(
        "--attribute",
        type=_attribute,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a token attribute; repeat for more (at most 1023 bytes in all)",
    )
    participant_token.add_argument(
        "--json",
        action="store_true",
        help="print the whole answer of POST /v1/participant-tokens, not only the token",
    )
    participant_token.set_defaults(handler=_participant_token)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="token-service",
        description="Amazon IVS real-time participant token service.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    # Only `emulator` sets it: its arguments are left for the emulator's own parser.
    parser.set_defaults(emulator=False)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    # Unset flags fall back to TOKEN_SERVICE_HOST, _PORT and _WORKERS (a container's CMD
    # stays the same while the environment changes), then to 127.0.0.1:8080, one worker.
    serve.add_argument("--host", default=None, help="default: TOKEN_SERVICE_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: TOKEN_SERVICE_PORT or 8080")
    serve.add_argument(
        "--workers", type=_positive, default=None, help="default: TOKEN_SERVICE_WORKERS or 1"
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development: in-process IVS emulator, demo stage, generated key and secret",
    )
    serve.set_defaults(handler=_serve)

    # Its flags are the emulator's own (`token-service emulator --help`): parsed by its
    # command line, imported only when this command runs.
    emulator = commands.add_parser(
        "emulator",
        help="run the IVS real-time emulator (development installs only)",
        add_help=False,
    )
    emulator.set_defaults(emulator=True)

    keys = commands.add_parser("keys", help="signing key administration")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser("list", help="list signing keys and their status")
    key_commands.add_parser("rotate", help="generate, import and activate a new key")
    delete = key_commands.add_parser("delete", help="DeletePublicKey and forget the key")
    delete.add_argument("name")
    delete.add_argument(
        "--force",
        action="store_true",
        help="a retiring key whose tokens may be unexpired (never the active key: revoke it)",
    )
    key_commands.add_parser(
        "prepare", help="import the next key ahead of time (status next); rotate promotes it"
    )
    revoke = key_commands.add_parser(
        "revoke",
        help="compromised key: DeletePublicKey now, a new key active; prints tokens invalidated",
    )
    revoke.add_argument("name")
    key_commands.add_parser(
        "reconcile",
        help="compare the public keys at IVS with the ring: delete this service's half-made "
        "imports, report keys it does not know",
    )
    keys.set_defaults(handler=_keys)

    participants = commands.add_parser(
        "participants", help="look up the participant-ID mapping log (reads Redis)"
    )
    participant_commands = participants.add_subparsers(dest="participants_command", required=True)
    show = participant_commands.add_parser("show", help="the mapping record of a participant")
    show.add_argument("participant_id")
    of_user = participant_commands.add_parser(
        "of-user", help="participants issued to an app user, newest first"
    )
    of_user.add_argument("user_id")
    of_user.add_argument(
        "--issuer",
        default=None,
        help=(
            "whose user id: the issuer of the user's tokens, '' for tokens without one, '*' "
            "for every issuer; required when a shared secret and OIDC are both configured "
            "(else every issuer)"
        ),
    )
    of_user.add_argument("--limit", type=_positive, default=50)
    of_user.add_argument("--cursor", default=None, help="nextCursor of the previous page")
    participant_commands.add_parser(
        "migrate",
        help=(
            "move the user index of records stored up to 0.1.0 to (issuer, user id); "
            "idempotent, safe while serving"
        ),
    )
    participants.set_defaults(handler=_participants)

    _add_participant_token(commands)

    user_token = commands.add_parser(
        "user-token", help="mint an app-user JWT with the configured shared secret"
    )
    user_token.add_argument("--sub", required=True, help="the app user id")
    user_token.add_argument("--roles", default="", help="comma-separated, e.g. publisher")
    user_token.add_argument("--ttl", type=_positive, default=3600, help="seconds")
    user_token.set_defaults(handler=_user_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.emulator:
        return _emulator(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigurationError as exc:
        _print_config_error(exc)
        return EXIT_CONFIG
    except DomainError as exc:
        print(f"token-service: {exc.detail}", file=sys.stderr)
        for error in exc.errors if isinstance(exc, InvalidRequest) else ():
            print(f"  - {error.field}: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def print_json(value: Mapping[str, Any] | Sequence[Any]) -> None:
    print(json.dumps(value, indent=2))
