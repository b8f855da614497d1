"""The IVS adapter's own retries: attempts, deadline, budget slots, error mapping."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from token_service.errors import (
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    UpstreamFailed,
    UpstreamTimeout,
)
from token_service.ivs.budget import BudgetExhausted
from token_service.ivs.client import (
    MAX_MISSED_SLOTS,
    Ivs,
    IvsOverloaded,
    IvsThrottled,
    RetryPolicy,
    build_client,
    translate,
)

TOKEN_ANSWER = {
    "participantToken": {
        "participantId": "p1",
        "token": "opaque",
        "userId": "u",
        "duration": 60,
        "capabilities": ["SUBSCRIBE"],
        "attributes": {},
    }
}
NO_WAIT = RetryPolicy(max_attempts=3, deadline_seconds=5, backoff_base_seconds=0)


def aws_error(
    code: str, status: int = 400, operation: str = "CreateParticipantToken"
) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} says no"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class ScriptedClient:
    """A boto3 client stand-in: each call takes the next outcome of its script."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def _next(self, **_: Any) -> Any:
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        if callable(outcome):
            return outcome()
        return outcome

    create_participant_token = _next
    delete_public_key = _next

    def close(self) -> None:
        pass


class CountingPacer:
    def __init__(self, *send_by: float | None, refuse: bool = False) -> None:
        self.acquired = 0
        self.send_by = list(send_by)
        self.refuse = refuse

    async def acquire(self, limit: float | None = None) -> float | None:
        self.acquired += 1
        if self.refuse:
            raise BudgetExhausted("no slot", retry_after=1)
        if self.send_by:
            return self.send_by.pop(0) if len(self.send_by) > 1 else self.send_by[0]
        return None


async def create(ivs: Ivs) -> Any:
    return await ivs.create_participant_token(
        stage_arn="arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456",
        user_id="u",
        duration_minutes=60,
        capabilities=("SUBSCRIBE",),
        attributes={},
    )


async def test_throttle_then_success_returns_the_token() -> None:
    client = ScriptedClient(aws_error("ThrottlingException", 429), TOKEN_ANSWER)

    token = await create(Ivs(client, retry=NO_WAIT))

    assert token.participant_id == "p1"
    assert client.calls == 2


async def test_validation_error_is_not_retried() -> None:
    client = ScriptedClient(aws_error("ValidationException"))

    with pytest.raises(InvalidRequest):
        await create(Ivs(client, retry=NO_WAIT))

    assert client.calls == 1


async def test_server_error_is_retried_up_to_the_attempt_budget() -> None:
    client = ScriptedClient(aws_error("InternalServerException", 500))

    with pytest.raises(UpstreamFailed):
        await create(Ivs(client, retry=NO_WAIT))

    assert client.calls == 3


async def test_throttling_after_every_attempt_is_ivs_throttled() -> None:
    client = ScriptedClient(aws_error("ThrottlingException", 429))

    with pytest.raises(IvsThrottled) as raised:
        await create(Ivs(client, retry=NO_WAIT))

    assert raised.value.retry_after == 1


async def test_non_repeatable_operation_is_not_retried_after_a_server_error() -> None:
    client = ScriptedClient(aws_error("InternalServerException", 500, "DeletePublicKey"))

    with pytest.raises(UpstreamFailed):
        await Ivs(client, retry=NO_WAIT).delete_public_key("arn")

    assert client.calls == 1


async def test_non_repeatable_operation_is_retried_when_the_request_never_left() -> None:
    client = ScriptedClient(ConnectTimeoutError(endpoint_url="http://ivs"), {})

    await Ivs(client, retry=NO_WAIT).delete_public_key("arn")

    assert client.calls == 2


async def test_every_attempt_of_a_paced_operation_takes_a_slot() -> None:
    client = ScriptedClient(aws_error("ThrottlingException", 429), TOKEN_ANSWER)
    pacer = CountingPacer()
    ivs = Ivs(client, retry=NO_WAIT, pacers={"CreateParticipantToken": pacer})

    await create(ivs)

    assert pacer.acquired == 2


async def test_budget_refusal_makes_no_ivs_call() -> None:
    client = ScriptedClient(TOKEN_ANSWER)
    ivs = Ivs(client, retry=NO_WAIT, pacers={"CreateParticipantToken": CountingPacer(refuse=True)})

    with pytest.raises(BudgetExhausted):
        await create(ivs)

    assert client.calls == 0


async def test_missed_slot_is_given_back_and_a_new_one_taken() -> None:
    client = ScriptedClient(TOKEN_ANSWER)
    pacer = CountingPacer(time.monotonic() - 1, time.monotonic() + 60)
    ivs = Ivs(client, retry=NO_WAIT, pacers={"CreateParticipantToken": pacer})

    await create(ivs)

    assert (pacer.acquired, client.calls) == (2, 1)


async def test_slots_missed_again_and_again_give_up_with_503() -> None:
    client = ScriptedClient(TOKEN_ANSWER)
    pacer = CountingPacer(time.monotonic() - 1)
    ivs = Ivs(client, retry=NO_WAIT, pacers={"CreateParticipantToken": pacer})

    with pytest.raises(IvsOverloaded):
        await create(ivs)

    assert (pacer.acquired, client.calls) == (MAX_MISSED_SLOTS + 1, 0)


async def test_deadline_ends_a_call_that_hangs() -> None:
    client = ScriptedClient(lambda: time.sleep(0.5) or TOKEN_ANSWER)
    policy = RetryPolicy(max_attempts=3, deadline_seconds=0.05)

    with pytest.raises(UpstreamTimeout):
        await create(Ivs(client, retry=policy))


async def test_a_cancelled_request_waiting_for_ivs_stays_cancelled() -> None:
    # The deadline is the IVS call's own: a caller that goes away (its task cancelled)
    # is not turned into a timeout.
    client = ScriptedClient(lambda: time.sleep(0.3) or TOKEN_ANSWER)
    call = asyncio.ensure_future(create(Ivs(client, retry=RetryPolicy(deadline_seconds=5))))
    await asyncio.sleep(0.05)

    call.cancel()

    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_retry_cut_off_by_the_deadline_reports_what_ivs_answered_before() -> None:
    # Throttled, then a retry that cannot finish before the deadline: IVS said
    # "throttled" (503, Retry-After), it did not fail to answer (504).
    client = ScriptedClient(
        aws_error("ThrottlingException", 429), lambda: time.sleep(0.5) or TOKEN_ANSWER
    )
    policy = RetryPolicy(max_attempts=3, deadline_seconds=0.2, backoff_base_seconds=0)

    with pytest.raises(IvsThrottled):
        await create(Ivs(client, retry=policy))

    assert client.calls == 2


async def test_a_server_error_then_a_retry_out_of_time_is_upstream_failed() -> None:
    client = ScriptedClient(
        aws_error("InternalServerException", 500), lambda: time.sleep(0.5) or TOKEN_ANSWER
    )
    policy = RetryPolicy(max_attempts=3, deadline_seconds=0.2, backoff_base_seconds=0)

    with pytest.raises(UpstreamFailed) as raised:
        await create(Ivs(client, retry=policy))

    assert not isinstance(raised.value, UpstreamTimeout)


async def test_each_attempt_is_reported_with_its_outcome() -> None:
    client = ScriptedClient(aws_error("ThrottlingException", 429), TOKEN_ANSWER)
    seen: list[tuple[str, str]] = []
    ivs = Ivs(client, retry=NO_WAIT, on_call=lambda op, outcome: seen.append((op, outcome)))

    await create(ivs)

    assert seen == [("CreateParticipantToken", "throttled"), ("CreateParticipantToken", "ok")]


def test_not_found_maps_to_not_found() -> None:
    assert isinstance(translate(aws_error("ResourceNotFoundException", 404), "GetStage"), NotFound)


def test_quota_exceeded_maps_to_throttled_with_retry_after() -> None:
    error = translate(aws_error("ServiceQuotaExceededException", 402), "CreateParticipantToken")

    assert isinstance(error, IvsThrottled)
    assert error.retry_after


@pytest.mark.parametrize("code", ["AccessDeniedException", "PendingVerification"])
def test_refusals_map_to_upstream_failed_without_aws_message(code: str) -> None:
    error = translate(aws_error(code, 403), "CreateParticipantToken")

    assert isinstance(error, UpstreamFailed)
    assert "says no" not in error.detail


def test_access_denied_logs_the_missing_permission(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="token_service.ivs.client"):
        translate(aws_error("AccessDeniedException", 403), "CreateParticipantToken")

    assert "grant ivs:CreateParticipantToken" in caplog.text


def test_unreachable_endpoint_maps_to_503() -> None:
    error = translate(EndpointConnectionError(endpoint_url="http://ivs"), "CreateParticipantToken")

    assert type(error) is ServiceUnavailable


def test_client_makes_one_attempt_with_the_configured_timeouts_and_pool() -> None:
    client = build_client(
        region="us-east-1", endpoint_url=None, connect_timeout=1.5, read_timeout=4, pool_size=7
    )

    config = client.meta.config
    assert config.retries["total_max_attempts"] == 1
    assert (config.connect_timeout, config.read_timeout) == (1.5, 4)
    assert config.max_pool_connections == 7
