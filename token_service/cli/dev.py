"""`token-service serve --dev`: everything a newcomer needs, with nothing but Python.

Starts the IVS emulator in-process, creates a demo stage, generates and imports a
signing key into a temporary directory, enables a development shared secret (random per
run unless one is set, in a file of that directory), and prints a `curl` that works as
pasted and a `token-service user-token` command that mints with the same secret.
DEVELOPMENT ONLY: the secret and admin token are printed to the terminal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shlex
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import boto3
import uvicorn
from ivs_realtime_emulator.server import EmulatorServer

from token_service.bootstrap.app import create_app
from token_service.bootstrap.clients import build_operator_ivs
from token_service.bootstrap.features import build_policy, build_user_token_minter
from token_service.bootstrap.keys import build_key_ring
from token_service.config import Settings, load_settings
from token_service.observability.logs import LogFormat, configure_logging

DEMO_STAGE_NAME = "demo"
BANNER = "=" * 78


def _dev_environment(env: Mapping[str, str], emulator_url: str, dev_dir: Path) -> dict[str, str]:
    """The environment `serve --dev` runs with: the emulator, keys in `dev_dir`, and a shared
    secret. A generated secret is written to a file in `dev_dir` (owner-only) and given as
    `_FILE`, so `token-service user-token` in another shell can mint with the same one."""
    dev = dict(env)
    dev["TOKEN_SERVICE_IVS_ENDPOINT_URL"] = emulator_url
    dev["TOKEN_SERVICE_KEYS_DIR"] = str(dev_dir / "keys")
    dev.setdefault("TOKEN_SERVICE_AWS_REGION", "us-east-1")
    if not dev.get("TOKEN_SERVICE_AUTH_SHARED_SECRET") and not dev.get(
        "TOKEN_SERVICE_AUTH_SHARED_SECRET_FILE"
    ):
        secret_file = dev_dir / "shared-secret"
        secret_file.touch(mode=0o600)
        secret_file.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        dev["TOKEN_SERVICE_AUTH_SHARED_SECRET_FILE"] = str(secret_file)
    if not dev.get("TOKEN_SERVICE_ADMIN_TOKENS"):
        dev["TOKEN_SERVICE_ADMIN_TOKENS"] = "dev-admin-" + secrets.token_urlsafe(24)
    return dev


def _create_demo_stage(settings: Settings) -> str:
    client = boto3.client(
        "ivs-realtime",
        endpoint_url=settings.ivs.endpoint_url,
        region_name=settings.ivs.region,
        aws_access_key_id="AKIDDEVELOPMENT",
        aws_secret_access_key="development-only",  # noqa: S106 - the emulator accepts any key
    )
    stage = client.create_stage(name=DEMO_STAGE_NAME)["stage"]
    return stage["arn"]


async def _import_key(settings: Settings) -> str:
    ivs = build_operator_ivs(settings, workers=1)
    try:
        ring = build_key_ring(settings, ivs, build_policy(settings))
        key = await ring.rotate()
        return key.arn
    finally:
        ivs.close()


def _print_banner(
    *,
    base: str,
    emulator_url: str,
    stage_arn: str,
    user_token: str,
    admin_token: str,
    key: str,
    mint_command: str,
    demo_page: bool = False,
) -> None:
    body = f'{{"stageArn": "{stage_arn}", "capabilities": ["PUBLISH", "SUBSCRIBE"]}}'
    curl = (
        f"curl -sS -X POST {base}/v1/participant-tokens \\\n"
        f"  -H 'Authorization: Bearer {user_token}' \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(body)}"
    )
    lines = [
        BANNER,
        " token-service DEVELOPMENT MODE: emulated IVS, throwaway key and secrets.",
        " Never expose this to a network or use it in production.",
        BANNER,
        f" service        {base}   (OpenAPI: {base}/schema/openapi.json)",
        f" IVS emulator   {emulator_url}   (boto3 endpoint_url; POST /_emulator/join)",
        f" demo stage     {stage_arn}",
        f" signing key    {key}",
        *(
            [f" demo page      {base}/demo   (a token in the browser, read by the IVS web SDK)"]
            if demo_page
            else []
        ),
        "",
        " Fetch a participant token (the user 'demo-user' has the publisher role):",
        "",
        curl,
        "",
        " Check it as IVS would at join:",
        f"  curl -sS -X POST {emulator_url}/_emulator/join "
        "-H 'Content-Type: application/json' -d '{\"token\": \"<token>\"}'",
        "",
        " Mint an app-user JWT for any user id and roles (from another shell):",
        f"  {mint_command}",
        "",
        f" Admin API:  curl -sS {base}/admin/keys -H 'Authorization: Bearer {admin_token}'",
        BANNER,
    ]
    print("\n".join(lines), flush=True)


def _mint_command(env: Mapping[str, str], dev_env: Mapping[str, str]) -> str:
    """`token-service user-token` as it works from another shell against this server: the
    script beside this interpreter (it may not be on PATH), and the secret's file when the
    secret was generated here (the caller's own secret is in the caller's environment)."""
    script = Path(sys.executable).with_name("token-service")
    command = shlex.quote(str(script)) if script.is_file() else "token-service"
    generated = dev_env.get("TOKEN_SERVICE_AUTH_SHARED_SECRET_FILE")
    if generated and generated != env.get("TOKEN_SERVICE_AUTH_SHARED_SECRET_FILE"):
        command = f"TOKEN_SERVICE_AUTH_SHARED_SECRET_FILE={shlex.quote(generated)} {command}"
    return f"{command} user-token --sub alice --roles publisher"


def run_dev(*, host: str, port: int, env: Mapping[str, str]) -> int:
    # The emulator accepts any credentials, but boto3 needs some to sign with, and it
    # reads them from the process environment. Real ones, if set, are left alone and
    # never leave this machine: every IVS call goes to the in-process emulator.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "AKIDDEVELOPMENT")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "development-only")
    emulator = EmulatorServer(host="127.0.0.1", port=0)
    emulator.start()
    try:
        with tempfile.TemporaryDirectory(prefix="token-service-dev-") as dev_dir:
            dev_env = _dev_environment(env, emulator.url, Path(dev_dir))
            settings = load_settings(dev_env, dev=True)
            log_format = settings.logging.format
            if log_format is LogFormat.AUTO:
                log_format = LogFormat.TEXT
            configure_logging(settings.logging.level, log_format)
            stage_arn = _create_demo_stage(settings)
            # The demo page offers the demo stage unless one was configured.
            settings = dataclasses.replace(
                settings,
                http=dataclasses.replace(
                    settings.http, demo_stage_arn=settings.http.demo_stage_arn or stage_arn
                ),
            )
            key_arn = asyncio.run(_import_key(settings))
            mint = build_user_token_minter(settings)
            assert mint is not None  # noqa: S101 - the dev environment always has a secret
            user_token = mint("demo-user", ["publisher"], 12 * 3600)
            app = create_app(settings)
            shown_host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
            _print_banner(
                base=f"http://{shown_host}:{port}",
                emulator_url=emulator.url,
                stage_arn=stage_arn,
                user_token=user_token,
                admin_token=settings.admin_tokens[0].reveal(),
                key=key_arn,
                mint_command=_mint_command(env, dev_env),
                demo_page=settings.demo_enabled,
            )
            uvicorn.run(app, host=host, port=port, log_config=None)
    finally:
        emulator.stop()
    sys.stdout.flush()
    return 0
