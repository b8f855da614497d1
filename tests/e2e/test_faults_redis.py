"""Redis killed, restarted or frozen under load: a real `serve` process in local mode.

A steady load (20 requests/s, one user per request) runs against `token-service serve`
with its own `redis-server`; mid-way that server is killed (SIGKILL) and started
again on the same port, or frozen (SIGSTOP) and thawed. The service is never
restarted. Redis keeps an append-only file fsynced on every write, as a production
Redis holding the mapping log must: a Redis that forgets its data on restart loses
the records with it, whatever the service does.

- `deny` (TOKEN_SERVICE_MAPPING_ON_REDIS_ERROR, the default): while Redis is away
  every answer is 503 with Retry-After, quickly; 201 again once it is back.
- `outbox`: tokens keep coming (201) and their records are written once Redis is back.
- Either way: every 201 a client got has its record, read back through the admin API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fault_load import (
    FaultRun,
    Load,
    Outcome,
    ServeProcess,
    long_fault_run,
    request_token,
    run_with_fault,
    serve_process,
    statuses,
    summary,
    wait_until,
)
from tests.support.processes import create_stage, run_cli
from tests.support.redis_server import RedisProcess
from token_service.auth import mint_user_token

SECRET = "faults-redis-secret-" + "f" * 32
ADMIN_TOKEN = "faults-admin-token-0123456789"
RATE = 20
#: Seconds of load before the fault, with the fault, and after it ends.
BEFORE, DURING, AFTER = 1.5, 4.0, 4.5
#: After Redis is back: the circuit breaker (1 s) and a reconnect; generous on a busy box.
RECOVERY = 3.0
#: Every answer, whatever the fault, comes within this. The service's own bound is
#: TOKEN_SERVICE_REDIS_TIMEOUT_SECONDS (0.5 s here) and answers measure 0.03-0.6 s on a
#: quiet machine; the rest is headroom for a shared, overloaded 2-core machine. That no
#: request waits for a frozen Redis is checked by `down`: answered before the thaw.
LATENCY_BOUND = 8.0
#: Requests sent this long before Redis comes back must be answered before it does.
MARGIN = 2.5

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    server = RedisProcess(None, "--appendonly", "yes", "--appendfsync", "always").start()
    try:
        yield server
    finally:
        server.close()


def service_env(emulator_url: str, keys_dir: Path, redis_url: str, on_error: str) -> dict[str, str]:
    return {
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator_url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_KEYS_DIR": str(keys_dir),
        "TOKEN_SERVICE_REDIS_URL": redis_url,
        "TOKEN_SERVICE_REDIS_TIMEOUT_SECONDS": "0.5",
        "TOKEN_SERVICE_MAPPING_ON_REDIS_ERROR": on_error,
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
        "TOKEN_SERVICE_RATE_LIMIT_USER": "1000/second",
        "TOKEN_SERVICE_RATE_LIMIT_IP": "1000/second",
        "TOKEN_SERVICE_RATE_LIMIT_STAGE": "1000/second",
        "TOKEN_SERVICE_LOG_FORMAT": "json",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }


@pytest.fixture
def serving(
    emulator_url: str, tmp_path: Path, redis_server: RedisProcess, request: pytest.FixtureRequest
) -> Iterator[tuple[ServeProcess, str]]:
    env = service_env(emulator_url, tmp_path / "keys", redis_server.url, request.param)
    rotated = run_cli("keys", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    stage_arn = create_stage(emulator_url, "faults")
    with serve_process(env, tmp_path / "serve.log") as service:
        warm_up(service, stage_arn)
        yield service, stage_arn


def warm_up(service: ServeProcess, stage_arn: str) -> None:
    """One token first: the stage's endpoints are cached and the first connections open."""
    bearer = mint_user_token(SECRET.encode(), sub="warm-up")
    status, *_ = request_token(service.base, {"stageArn": stage_arn}, bearer)
    assert status == 201


def run(service: ServeProcess, stage_arn: str, start: Any, end: Any) -> FaultRun:
    def bearer(n: int) -> str:
        return mint_user_token(SECRET.encode(), sub=f"load-{n}")

    load = Load(service.base, {"stageArn": stage_arn}, bearer, rate=RATE)
    return run_with_fault(load, start, end, before=BEFORE, during=DURING, after=AFTER)


def admin_records(service: ServeProcess, participant_ids: list[str]) -> dict[str, int]:
    """The admin API's status for each participant's record."""
    found: dict[str, int] = {}
    with httpx.Client(
        base_url=service.base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ) as admin:
        for pid in participant_ids:
            found[pid] = admin.get(f"/admin/participants/{pid}").status_code
    return found


def issued(outcomes: list[Outcome]) -> list[str]:
    return [o.participant_id for o in outcomes if o.status == 201 and o.participant_id]


def assert_every_record_found(service: ServeProcess, outcomes: list[Outcome]) -> None:
    pids = issued(outcomes)
    assert len(set(pids)) == len(pids)

    def missing() -> list[str]:
        return [pid for pid, status in admin_records(service, pids).items() if status != 200]

    # The outbox is flushed every 2 s: allow a few rounds.
    wait_until(lambda: not missing(), timeout=20, what=f"records of {len(pids)} tokens")


def assert_answered_quickly_and_only_201_or_503(outcomes: list[Outcome]) -> None:
    assert statuses(outcomes).keys() <= {201, 503}, statuses(outcomes)
    slowest = max(o.seconds for o in outcomes)
    assert slowest < LATENCY_BOUND, f"slowest answer {slowest:.2f}s"
    assert all(o.retry_after for o in outcomes if o.status == 503)


def down(result: FaultRun) -> list[Outcome]:
    """Requests sent while Redis was away, well before it came back: each must have been
    answered before Redis came back (none waited for it); returns them."""
    sent = [o for o in result.outcomes if result.began + 0.3 < o.sent < result.lifting - MARGIN]
    late = [o for o in sent if o.answered >= result.lifting]
    assert not late, f"{len(late)} requests waited for Redis: {late[:3]}"
    assert sent
    return sent


@pytest.mark.parametrize("serving", ["deny"], indirect=True)
def test_redis_killed_in_deny_mode_answers_503_quickly_then_201_once_restarted(
    serving: tuple[ServeProcess, str], redis_server: RedisProcess
) -> None:
    service, stage_arn = serving
    result = run(service, stage_arn, redis_server.stop, redis_server.start)
    print(summary(result))
    assert_answered_quickly_and_only_201_or_503(result.outcomes)
    assert statuses(result.before()) == {201: len(result.before())}
    during = down(result)
    assert statuses(during) == {503: len(during)}
    late = result.after(RECOVERY)
    assert late
    assert statuses(late) == {201: len(late)}
    assert_every_record_found(service, result.outcomes)


@pytest.mark.parametrize("serving", ["outbox"], indirect=True)
def test_redis_killed_in_outbox_mode_keeps_issuing_and_writes_every_record_once_back(
    serving: tuple[ServeProcess, str], redis_server: RedisProcess
) -> None:
    service, stage_arn = serving
    result = run(service, stage_arn, redis_server.stop, redis_server.start)
    print(summary(result))
    assert_answered_quickly_and_only_201_or_503(result.outcomes)
    down(result)
    assert statuses(result.outcomes) == {201: len(result.outcomes)}
    assert_every_record_found(service, result.outcomes)
    assert '"recordDeferred": true' in service.output()


@long_fault_run
@pytest.mark.parametrize("serving", ["deny"], indirect=True)
def test_redis_frozen_in_deny_mode_answers_503_within_the_timeout_then_201_once_thawed(
    serving: tuple[ServeProcess, str], redis_server: RedisProcess
) -> None:
    service, stage_arn = serving
    result = run(service, stage_arn, redis_server.pause, redis_server.resume)
    print(summary(result))
    assert_answered_quickly_and_only_201_or_503(result.outcomes)
    during = down(result)
    assert statuses(during) == {503: len(during)}
    late = result.after(RECOVERY)
    assert late
    assert statuses(late) == {201: len(late)}
    assert_every_record_found(service, result.outcomes)


@long_fault_run
@pytest.mark.parametrize("serving", ["outbox"], indirect=True)
def test_redis_frozen_in_outbox_mode_keeps_issuing_and_writes_every_record_once_thawed(
    serving: tuple[ServeProcess, str], redis_server: RedisProcess
) -> None:
    service, stage_arn = serving
    result = run(service, stage_arn, redis_server.pause, redis_server.resume)
    print(summary(result))
    assert_answered_quickly_and_only_201_or_503(result.outcomes)
    down(result)
    assert statuses(result.outcomes) == {201: len(result.outcomes)}
    assert_every_record_found(service, result.outcomes)
