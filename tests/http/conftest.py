"""The service app wired to the real emulator (over HTTP, through boto3) and real keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from token_service.auth import mint_user_token
from token_service.bootstrap.app import create_app
from token_service.config import Settings, load_settings
from token_service.ivs.client import Ivs
from token_service.keys import KeyFiles, KeyRing, SigningKey

SHARED_SECRET = "test-shared-secret-" + "x" * 32
ADMIN_TOKEN = "test-admin-token-0123456789"
MintUserToken = Callable[..., str]


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def stage(ivs_client: Any) -> dict[str, Any]:
    stage: dict[str, Any] = ivs_client.create_stage(name="api-test")["stage"]
    return stage


@pytest.fixture
def stage_arn(stage: Mapping[str, Any]) -> str:
    return str(stage["arn"])


@pytest.fixture
def env(emulator: Any, keys_dir: Path) -> dict[str, str]:
    return {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator.url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(keys_dir),
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


def rotate_key(ivs_client: Any, keys_dir: Path) -> SigningKey:
    """Import a fresh key through the real key ring, as `token-service keys rotate` does."""

    async def rotate() -> SigningKey:
        ring = KeyRing(KeyFiles(keys_dir), Ivs(ivs_client), max_token_lifetime=timedelta(hours=12))
        ring.load()
        return await ring.rotate()

    return asyncio.run(rotate())


@pytest.fixture
def signing_key(ivs_client: Any, keys_dir: Path) -> SigningKey:
    return rotate_key(ivs_client, keys_dir)


@pytest.fixture
def make_app(settings: Settings, ivs_client: Any) -> Callable[..., Litestar]:
    def make(**overrides: Any) -> Litestar:
        return create_app(overrides.pop("settings", settings), ivs_client=ivs_client, **overrides)

    return make


@pytest.fixture
async def client(
    signing_key: SigningKey, make_app: Callable[..., Litestar]
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=make_app()) as test_client:
        yield test_client


@pytest.fixture
def user_token() -> MintUserToken:
    def mint(sub: str = "user-1", roles: tuple[str, ...] = (), **kwargs: Any) -> str:
        return mint_user_token(SHARED_SECRET.encode(), sub=sub, roles=list(roles), **kwargs)

    return mint


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def join(emulator: Any, token: str) -> httpx.Response:
    return httpx.post(f"{emulator.url}/_emulator/join", json={"token": token}, timeout=5)


def emulator_stats(emulator: Any) -> dict[str, Any]:
    """Per-operation call counts the emulator saw (GET /_emulator/stats)."""
    operations: dict[str, Any] = httpx.get(f"{emulator.url}/_emulator/stats", timeout=5).json()[
        "operations"
    ]
    return operations
