"""Unknown stages cost their asker, never the account (issue 19, item 1).

A request for a stage whose endpoints are not cached needs a GetStage call (IVS allows 5
per second per account). Before, that call was made before admission: a user asking for
made-up stage ARNs got 404s that counted against no limit, and spent the account's
GetStage quota until every replica answered 503 ("IVS is throttling GetStage") to the
users of real, uncached stages. Now a request is admitted (user, IP and stage limits)
before it may cost an IVS call, and all lookups share one budget under IVS's quota.

In process with a real Redis and the emulator with IVS's quotas on, which counts every
GetStage call it received.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from ivs_realtime_emulator.server import EmulatorServer
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import rotate_key
from tests.security.conftest import serving
from token_service.auth import mint_user_token
from token_service.bootstrap.app import create_app
from token_service.config import load_settings

SECRET = "unknown-stages-secret-" + "u" * 32
URL = "/v1/participant-tokens"
Client = AsyncTestClient[Litestar]


def _env(emulator: EmulatorServer, redis_url: str, keys_dir: Path, **env: str) -> dict[str, str]:
    return {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator.url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(keys_dir),
        "TOKEN_SERVICE_REDIS_URL": redis_url,
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "TOKEN_SERVICE_RATE_LIMIT_IP": "10000/minute",
        "TOKEN_SERVICE_RATE_LIMIT_STAGE": "10000/minute",
    } | {f"TOKEN_SERVICE_{name.upper()}": value for name, value in env.items()}


@asynccontextmanager
async def _service(
    emulator: EmulatorServer, ivs_client: Any, redis_url: str, keys_dir: Path, **env: str
) -> AsyncIterator[Client]:
    """In process: requests one at a time (the test client runs each to its end)."""
    settings = load_settings(_env(emulator, redis_url, keys_dir, **env))
    async with AsyncTestClient(app=create_app(settings, ivs_client=ivs_client)) as client:
        yield client


@asynccontextmanager
async def _served(
    emulator: EmulatorServer, redis_url: str, keys_dir: Path, **env: str
) -> AsyncIterator[httpx.AsyncClient]:
    """`token-service serve`, for requests that must really be in flight together."""
    with serving(_env(emulator, redis_url, keys_dir, **env)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield client


def _bearer(sub: str) -> dict[str, str]:
    token = mint_user_token(SECRET.encode(), sub=sub, roles=[], ttl_seconds=600)
    return {"Authorization": f"Bearer {token}"}


def _made_up_stage(real_stage_arn: str) -> str:
    """A stage ARN of the right account and region that does not exist."""
    return real_stage_arn.rsplit("/", 1)[0] + "/" + secrets.token_hex(6)


def _calls(emulator: EmulatorServer, operation: str) -> dict[str, int]:
    """What the emulator saw of `operation`: calls, throttled, maxPerSecond."""
    stats = httpx.get(f"{emulator.url}/_emulator/stats").json()["operations"]
    return dict(stats.get(operation, {"calls": 0, "throttled": 0, "maxPerSecond": 0}))


@pytest.fixture
def keys_dir(ivs_client: Any, tmp_path: Path) -> Path:
    """An active signing key, imported into this test's emulator."""
    rotate_key(ivs_client, tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def real_stage(ivs_client: Any) -> str:
    return str(ivs_client.create_stage(name="real")["stage"]["arn"])


async def test_requests_for_made_up_stages_count_against_the_user_limit(
    emulator: EmulatorServer, ivs_client: Any, clean_redis: str, keys_dir: Path, real_stage: str
) -> None:
    async with _service(
        emulator, ivs_client, clean_redis, keys_dir, rate_limit_user="3/minute"
    ) as client:
        statuses = [
            (
                await client.post(
                    URL, json={"stageArn": _made_up_stage(real_stage)}, headers=_bearer("mallory")
                )
            ).status_code
            for _ in range(10)
        ]

    assert statuses == [404] * 3 + [429] * 7


async def test_a_rate_limited_request_for_an_uncached_stage_costs_no_get_stage_call(
    emulator: EmulatorServer, ivs_client: Any, clean_redis: str, keys_dir: Path, real_stage: str
) -> None:
    async with _service(
        emulator, ivs_client, clean_redis, keys_dir, rate_limit_user="3/minute"
    ) as client:
        for _ in range(10):
            await client.post(
                URL, json={"stageArn": _made_up_stage(real_stage)}, headers=_bearer("mallory")
            )

    assert _calls(emulator, "GetStage")["calls"] == 3


async def test_many_users_asking_for_made_up_stages_never_get_get_stage_throttled(
    emulator: EmulatorServer, ivs_client: Any, clean_redis: str, keys_dir: Path, real_stage: str
) -> None:
    """Sixty users at once, each within their limits: the lookup budget (3/s by default)
    refuses what IVS's 5/s would throttle, so the account's quota is never exceeded."""
    async with _served(emulator, clean_redis, keys_dir) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    URL, json={"stageArn": _made_up_stage(real_stage)}, headers=_bearer(f"u{n}")
                )
                for n in range(60)
            )
        )

    calls = _calls(emulator, "GetStage")
    assert calls["throttled"] == 0
    assert calls["maxPerSecond"] <= 5
    refused = [a for a in answers if a.status_code == 503]
    assert refused, "sixty lookups at once cannot all fit a 3/s budget within a 5 s wait"
    assert {a.json()["type"].rsplit("/", 1)[-1] for a in refused} == {"ivs-budget-exhausted"}
    assert all(float(a.headers["Retry-After"]) > 0 for a in refused)
    assert {a.status_code for a in answers} == {404, 503}


async def test_a_cached_stage_still_issues_while_lookups_of_made_up_stages_are_refused(
    emulator: EmulatorServer, ivs_client: Any, clean_redis: str, keys_dir: Path, real_stage: str
) -> None:
    async with _served(emulator, clean_redis, keys_dir) as client:
        first = await client.post(URL, json={"stageArn": real_stage}, headers=_bearer("alice"))
        flood = [
            client.post(
                URL, json={"stageArn": _made_up_stage(real_stage)}, headers=_bearer(f"m{n}")
            )
            for n in range(40)
        ]
        *_, during = await asyncio.gather(
            *flood, client.post(URL, json={"stageArn": real_stage}, headers=_bearer("bob"))
        )

    assert (first.status_code, during.status_code) == (201, 201)


async def test_in_ivs_mode_made_up_stages_count_against_the_user_limit_too(
    emulator: EmulatorServer, ivs_client: Any, clean_redis: str, keys_dir: Path, real_stage: str
) -> None:
    """The same class of hole in the other mode: CreateParticipantToken for a stage that
    does not exist is an IVS call too, and must be admitted first."""
    async with _service(
        emulator, ivs_client, clean_redis, keys_dir, mode="ivs", rate_limit_user="3/minute"
    ) as client:
        statuses = [
            (
                await client.post(
                    URL, json={"stageArn": _made_up_stage(real_stage)}, headers=_bearer("mallory")
                )
            ).status_code
            for _ in range(6)
        ]

    assert statuses == [404] * 3 + [429] * 3
    assert _calls(emulator, "CreateParticipantToken")["calls"] == 3
