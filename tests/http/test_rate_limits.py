"""Rate limits over HTTP: 429 with Retry-After and RateLimit fields, one Redis round trip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.http.conftest import MintUserToken, bearer
from token_service.config import load_settings

pytestmark = pytest.mark.usefixtures("signing_key")
URL = "/v1/participant-tokens"


def _app(make_app: Callable[..., Litestar], env: dict[str, str], **extra: str) -> Litestar:
    return make_app(settings=load_settings({**env, **extra}))


async def test_user_over_the_limit_gets_429_with_retry_after_and_limits(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    app = _app(make_app, env, TOKEN_SERVICE_RATE_LIMIT_USER="2/minute")
    async with AsyncTestClient(app=app) as client:
        for _ in range(2):
            ok = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(user_token()))
            assert ok.status_code == 201
        denied = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(user_token()))
    assert denied.status_code == 429
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(denied.headers["retry-after"]) <= 30
    assert '"user";q=2;w=60' in denied.headers["ratelimit-policy"]
    assert '"user";r=0' in denied.headers["ratelimit"]
    assert "user limit" in denied.json()["detail"]


async def test_success_carries_the_callers_own_limits_but_never_the_stages(
    client: AsyncTestClient[Litestar], user_token: MintUserToken, stage_arn: str
) -> None:
    response = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(user_token()))
    assert response.status_code == 201
    assert response.headers["ratelimit-policy"] == '"user";q=10;w=60, "ip";q=60;w=60'
    assert response.headers["ratelimit"].startswith('"user";r=9;t=')
    assert "stage" not in response.headers["ratelimit-policy"]


async def test_stage_limit_refuses_without_disclosing_itself(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    app = _app(make_app, env, TOKEN_SERVICE_RATE_LIMIT_STAGE="1/minute")
    async with AsyncTestClient(app=app) as client:
        await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(user_token("a")))
        denied = await client.post(
            URL, json={"stageArn": stage_arn}, headers=bearer(user_token("b"))
        )
    assert denied.status_code == 429
    assert "stage" not in denied.json()["detail"]
    assert "stage" not in denied.headers["ratelimit-policy"]


async def test_refused_requests_consume_no_limit(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    app = _app(make_app, env, TOKEN_SERVICE_RATE_LIMIT_USER="1/minute")
    async with AsyncTestClient(app=app) as client:
        forbidden = await client.post(
            URL,
            json={"stageArn": stage_arn, "capabilities": ["PUBLISH"]},
            headers=bearer(user_token()),
        )
        assert forbidden.status_code == 403
        ok = await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(user_token()))
    assert ok.status_code == 201


async def test_a_spoofed_forwarded_for_does_not_escape_the_ip_limit(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    app = _app(make_app, env, TOKEN_SERVICE_RATE_LIMIT_IP="1/minute")
    async with AsyncTestClient(app=app) as client:
        await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(user_token("a")))
        spoofed = await client.post(
            URL,
            json={"stageArn": stage_arn},
            headers={**bearer(user_token("b")), "X-Forwarded-For": "203.0.113.77"},
        )
    assert spoofed.status_code == 429


async def test_policy_rule_overrides_the_user_limit_for_its_role(
    tmp_path: Path,
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[rules]]\nname = "vip"\nroles = ["vip"]\ncapabilities = ["SUBSCRIBE"]\n'
        'rate_limits = { user = "5/minute" }\n\n'
        '[[rules]]\nname = "everyone"\ncapabilities = ["SUBSCRIBE"]\n'
    )
    app = _app(
        make_app,
        env,
        TOKEN_SERVICE_RATE_LIMIT_USER="1/minute",
        TOKEN_SERVICE_POLICY_FILE=str(policy),
    )
    async with AsyncTestClient(app=app) as client:
        statuses = [
            (
                await client.post(
                    URL, json={"stageArn": stage_arn}, headers=bearer(user_token("v", ("vip",)))
                )
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [201, 201, 201]


async def test_an_issued_token_costs_exactly_one_redis_round_trip(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    clean_redis: str,
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    inspector = redis.Redis.from_url(clean_redis, socket_timeout=2)
    app = _app(make_app, env, TOKEN_SERVICE_REDIS_URL=clean_redis)
    async with AsyncTestClient(app=app) as client:
        # Warm up: the first request loads the script and fills the stage cache.
        await client.post(URL, json={"stageArn": stage_arn}, headers=bearer(user_token("w")))
        inspector.config_resetstat()
        for index in range(5):
            response = await client.post(
                URL, json={"stageArn": stage_arn}, headers=bearer(user_token(f"u{index}"))
            )
            assert response.status_code == 201
        stats: dict[str, Any] = inspector.info("commandstats")
    inspector.close()
    calls = {
        name.removeprefix("cmdstat_"): value["calls"]
        for name, value in stats.items()
        if name != "cmdstat_config|resetstat"  # the test's own reset
    }
    # INFO commandstats also counts what the script runs inside Redis: per token, the
    # clock, one MGET of the 4 ban keys (the user of this issuer and of every issuer, on
    # this stage and on all) and one of the 3 limits, 3 limit updates and the record
    # (SET), the record's 2 indexes (ZADD, trim), the user id's set of per-issuer indexes
    # (SADD), and for each of those three keys an EXPIREAT GT, followed by an EXPIREAT NX
    # when GT changed nothing (a new key: these users' two; the stage's when a token of
    # the same second came before). What the client sent is the EVALSHA alone: one round
    # trip per token.
    expireat = calls.pop("expireat")
    assert calls == {
        "evalsha": 5,
        "time": 5,
        "mget": 10,
        "set": 20,
        "zadd": 10,
        "zremrangebylex": 10,
        "sadd": 5,
    }
    assert 5 * 5 <= expireat <= 5 * 6
