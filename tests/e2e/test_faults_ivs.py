"""IVS throttling, failing, slow or gone under load: a real `serve` in ivs mode.

The emulator runs as its own process; its fault controls (`POST /_emulator/faults`)
make CreateParticipantToken throttle, fail or answer late for a while, and one test
kills the emulator and starts it again on the same port from its state file. A
steady load (10 requests/s) runs throughout, and the service is never restarted.
The mapping of each IVS error to a status is specified in tests/http/test_ivs_mode.py
(in-process); here: the statuses under load, every answer within the call's
deadline, and 201 again once IVS is healthy.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

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
)
from tests.support.processes import background, create_stage, wait_for_http
from tests.support.redis_server import free_port
from token_service.auth import mint_user_token

SECRET = "faults-ivs-secret-" + "i" * 32
RATE = 10
BEFORE, DURING, AFTER = 1.5, 3.0, 5.0
#: IVS healthy again: the next calls succeed at once; allow for a busy machine.
RECOVERY = 3.0
READ_TIMEOUT, DEADLINE = 1.0, 2.0
#: No answer may take longer than the IVS deadline plus this (a shared 2-core machine).
HEADROOM = 5.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180), long_fault_run]


class Emulator:
    """`token-service emulator` on a fixed port, with its state in a file."""

    def __init__(self, state: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = state
        self._running = ExitStack()

    def start(self) -> None:
        args = ("emulator", "--port", str(self.port), "--no-quotas", "--state", str(self.state))
        proc: subprocess.Popen[str] = self._running.enter_context(background(*args, env={}))
        wait_for_http(f"{self.url}/_emulator/health", proc=proc)

    def stop(self) -> None:
        self._running.close()


@pytest.fixture(scope="module")
def emulator_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator(tmp_path_factory.mktemp("ivs-emulator") / "state.json")
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def service(
    emulator_process: Emulator, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServeProcess, str]]:
    env = {
        "TOKEN_SERVICE_MODE": "ivs",
        "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator_process.url,
        "TOKEN_SERVICE_AWS_REGION": "us-east-1",
        "TOKEN_SERVICE_REDIS_URL": redis_url,
        "TOKEN_SERVICE_KEYS_DIR": str(tmp_path_factory.mktemp("no-keys")),
        "TOKEN_SERVICE_AUTH_SHARED_SECRET": SECRET,
        "TOKEN_SERVICE_RATE_LIMIT_USER": "1000/second",
        "TOKEN_SERVICE_RATE_LIMIT_IP": "1000/second",
        "TOKEN_SERVICE_RATE_LIMIT_STAGE": "1000/second",
        "TOKEN_SERVICE_IVS_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "TOKEN_SERVICE_IVS_CONNECT_TIMEOUT_SECONDS": "0.5",
        "TOKEN_SERVICE_IVS_DEADLINE_SECONDS": str(DEADLINE),
        "TOKEN_SERVICE_LOG_FORMAT": "json",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    stage_arn = create_stage(emulator_process.url, "ivs-faults")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serve_process(env, log) as serving:
        # One token first: connections to IVS and Redis open, the budget known.
        bearer = mint_user_token(SECRET.encode(), sub="warm-up")
        assert request_token(serving.base, {"stageArn": stage_arn}, bearer)[0] == 201
        yield serving, stage_arn


def set_faults(emulator: Emulator, **fault: object) -> None:
    response = httpx.post(
        f"{emulator.url}/_emulator/faults",
        json={"operation": "CreateParticipantToken", **fault},
        timeout=5,
    )
    assert response.status_code == 200, response.text


def clear_faults(emulator: Emulator) -> None:
    assert httpx.delete(f"{emulator.url}/_emulator/faults", timeout=5).status_code == 200


def run_load(
    service: ServeProcess, stage_arn: str, start: Callable[[], None], end: Callable[[], None]
) -> FaultRun:
    def bearer(n: int) -> str:
        return mint_user_token(SECRET.encode(), sub=f"ivs-load-{n}")

    load = Load(service.base, {"stageArn": stage_arn}, bearer, rate=RATE)
    return run_with_fault(load, start, end, before=BEFORE, during=DURING, after=AFTER)


#: 503s the service gives when it cannot keep IVS's pace itself: the shared budget is
#: spent (retries of failing calls take slots too) or this process missed its slot (a
#: busy machine). Documented, with Retry-After; allowed in every phase.
CAPACITY = {"ivs-budget-exhausted", "overloaded"}


def capacity_refusal(outcome: Outcome) -> bool:
    return outcome.status == 503 and outcome.problem in CAPACITY


def check_fault_run(
    run: FaultRun, during: set[int], primary: int, sent_by: float | None = None
) -> list[Outcome]:
    """201 before; while the fault lasts only `during` statuses, `primary` among them;
    201 again after; capacity refusals anywhere, with Retry-After; every answer within
    the deadline. Returns the requests answered during the fault (not capacity ones)."""
    slowest = max(o.seconds for o in run.outcomes)
    assert slowest < DEADLINE + HEADROOM, f"slowest answer {slowest:.2f}s"
    assert all(o.retry_after for o in run.outcomes if o.status in {503, 504})
    others = [o for o in run.outcomes if not capacity_refusal(o)]
    assert statuses(others).keys() <= {201} | during, statuses(run.outcomes)
    early = [o for o in run.before() if not capacity_refusal(o)]
    assert mostly_201(early), statuses(early)
    if sent_by is None:
        faulted = [o for o in run.during() if not capacity_refusal(o)]
    else:
        # A slow IVS: sent early enough that no attempt could reach IVS once it was fast.
        faulted = [o for o in others if run.began + 0.2 < o.sent < sent_by]
    assert faulted
    assert statuses(faulted).keys() <= during
    assert primary in statuses(faulted)
    late = [o for o in run.after(RECOVERY) if not capacity_refusal(o)]
    assert mostly_201(late), statuses(late)
    return faulted


def mostly_201(outcomes: list[Outcome]) -> bool:
    """IVS healthy: 201, but for the odd 503 with Retry-After a loaded machine causes
    (a Redis round trip over its timeout); never a fault's 502 or 504."""
    ok = [o for o in outcomes if o.status == 201]
    odd = [o for o in outcomes if o.status != 201]
    return (
        bool(outcomes)
        and len(ok) >= 0.8 * len(outcomes)
        and all(o.status == 503 and o.retry_after for o in odd)
    )


def test_ivs_throttling_every_call_answers_503_with_retry_after_then_201(
    service: tuple[ServeProcess, str], emulator_process: Emulator
) -> None:
    serving, stage_arn = service
    result = run_load(
        serving,
        stage_arn,
        lambda: set_faults(emulator_process, throttleRate=1),
        lambda: clear_faults(emulator_process),
    )
    print(summary(result))
    # 504 only for a call that got no answer at all before its deadline (a busy machine).
    faulted = check_fault_run(result, {503, 504}, 503)
    assert {o.problem for o in faulted if o.status == 503} == {"ivs-throttled"}


def test_ivs_failing_every_call_answers_502_then_201(
    service: tuple[ServeProcess, str], emulator_process: Emulator
) -> None:
    serving, stage_arn = service
    result = run_load(
        serving,
        stage_arn,
        lambda: set_faults(emulator_process, errorRate=1, error="InternalServerException"),
        lambda: clear_faults(emulator_process),
    )
    print(summary(result))
    # 504 only for a call that got no answer at all before its deadline (a busy machine).
    check_fault_run(result, {502, 504}, 502)


def test_ivs_slower_than_the_read_timeout_answers_504_within_the_deadline_then_201(
    service: tuple[ServeProcess, str], emulator_process: Emulator
) -> None:
    serving, stage_arn = service
    result = run_load(
        serving,
        stage_arn,
        lambda: set_faults(emulator_process, latencyMs=int(READ_TIMEOUT * 1000 * 3)),
        lambda: clear_faults(emulator_process),
    )
    print(summary(result))
    faulted = check_fault_run(result, {504}, 504, sent_by=result.lifting - DEADLINE)
    assert all(o.retry_after for o in faulted)
    assert all(o.seconds < DEADLINE + HEADROOM for o in faulted)


def test_ivs_unreachable_answers_503_then_201_once_it_is_back_on_the_same_port(
    service: tuple[ServeProcess, str], emulator_process: Emulator
) -> None:
    serving, stage_arn = service
    result = run_load(serving, stage_arn, emulator_process.stop, emulator_process.start)
    print(summary(result))
    # 503 once the port refuses; 504 for calls the stopping emulator took but never answered.
    faulted = check_fault_run(result, {503, 504}, 503)
    assert all(o.retry_after for o in faulted)
