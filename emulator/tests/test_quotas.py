"""The documented request-rate quotas: ThrottlingException (429) beyond them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.quotas import SlidingWindow

from tests.helpers import signed_request


@pytest.fixture
def emulator_options() -> EmulatorOptions:
    return EmulatorOptions()  # quotas on, as by default


def _burst(call, count: int, **params) -> list[str]:
    """Call `count` times as fast as possible: each call's error code, or "ok"."""
    outcomes = []
    for _ in range(count):
        try:
            call(**params)
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    return outcomes


def test_sixth_get_stage_within_a_second_is_throttled(ivs_client, stage) -> None:
    outcomes = _burst(ivs_client.get_stage, 6, arn=stage["arn"])

    assert outcomes[:5] == ["ok"] * 5
    assert outcomes[5] == "ThrottlingException"


def test_throttling_answers_429_with_error_type(emulator, ivs_client) -> None:
    _burst(ivs_client.list_stages, 5)

    response = signed_request(emulator.url, "POST", "/ListStages", {})

    assert response.status_code == 429
    assert response.headers["x-amzn-ErrorType"] == "ThrottlingException"


def test_create_participant_token_allows_50_per_second(http, ivs_client, stage) -> None:
    # Concurrent, so the 60 calls land well within one second even on a busy machine.
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(
            pool.map(
                lambda _: _burst(ivs_client.create_participant_token, 1, stageArn=stage["arn"])[0],
                range(60),
            )
        )

    stats = http.get("/_emulator/stats").json()["operations"]["CreateParticipantToken"]
    assert stats["maxPerSecond"] == 50
    assert outcomes.count("ok") == 50
    assert outcomes.count("ThrottlingException") == 10


def test_public_key_operations_allow_3_per_second(ivs_client) -> None:
    outcomes = _burst(ivs_client.list_public_keys, 4)

    assert outcomes == ["ok", "ok", "ok", "ThrottlingException"]


def test_quotas_are_per_operation(ivs_client, stage) -> None:
    _burst(ivs_client.get_stage, 5, arn=stage["arn"])

    assert _burst(ivs_client.list_stages, 1) == ["ok"]


def test_quotas_are_per_region(make_client) -> None:
    east, west = make_client("us-east-1"), make_client("us-west-2")
    _burst(east.list_stages, 5)

    assert _burst(west.list_stages, 5) == ["ok"] * 5


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("list_tags_for_resource", {}),
        ("tag_resource", {"tags": {"k": "v"}}),
        ("untag_resource", {"tagKeys": ["k"]}),
    ],
)
def test_tag_operations_allow_10_per_second(ivs_client, stage, method, params) -> None:
    outcomes = _burst(getattr(ivs_client, method), 11, resourceArn=stage["arn"], **params)

    assert outcomes == ["ok"] * 10 + ["ThrottlingException"]


def test_ingest_configuration_operations_allow_5_per_second(ivs_client) -> None:
    outcomes = _burst(ivs_client.list_ingest_configurations, 6)

    assert outcomes == ["ok"] * 5 + ["ThrottlingException"]


@pytest.mark.parametrize(
    "method",
    [
        "create_ingest_configuration",
        "get_ingest_configuration",
        "update_ingest_configuration",
        "delete_ingest_configuration",
    ],
)
def test_each_ingest_configuration_operation_is_limited_to_5(ivs_client, method) -> None:
    if method == "create_ingest_configuration":
        call, params = ivs_client.create_ingest_configuration, {"ingestProtocol": "RTMPS"}
    else:
        arn = "arn:aws:ivs:us-east-1:123456789012:ingest-configuration/unknown"
        call, params = getattr(ivs_client, method), {"arn": arn}

    outcomes = _burst(call, 6, **params)

    assert "ThrottlingException" not in outcomes[:5]
    assert outcomes[5] == "ThrottlingException"


def test_list_participant_events_allows_5_per_second(ivs_client, stage) -> None:
    params = {"stageArn": stage["arn"], "sessionId": "st-AAAAAAAAAAAAA", "participantId": "p"}
    outcomes = _burst(ivs_client.list_participant_events, 6, **params)

    assert outcomes == ["ok"] * 5 + ["ThrottlingException"]


@pytest.mark.parametrize("method", ["list_participant_replicas", "revoke_connection_token"])
def test_operations_the_quota_page_does_not_list_are_not_limited(ivs_client, stage, method) -> None:
    params = (
        {"sourceStageArn": stage["arn"], "participantId": "p"}
        if method == "list_participant_replicas"
        else {"tokenId": "t"}
    )
    outcomes = _burst(getattr(ivs_client, method), 12, **params)

    assert set(outcomes) == {"ok"}


def test_calls_are_accepted_again_once_the_window_slides(ivs_client) -> None:
    _burst(ivs_client.list_public_keys, 4)

    time.sleep(1.05)

    assert _burst(ivs_client.list_public_keys, 1) == ["ok"]


def test_stats_count_throttled_calls_and_the_busiest_second(http, ivs_client, stage) -> None:
    _burst(ivs_client.get_stage, 8, arn=stage["arn"])

    stats = http.get("/_emulator/stats").json()["operations"]["GetStage"]

    assert stats == {"calls": 8, "throttled": 3, "failed": 0, "maxPerSecond": 5}


def test_sliding_window_admits_at_most_the_limit_in_any_second() -> None:
    window = SlidingWindow(limit=2)

    assert window.try_acquire(0.0)
    assert window.try_acquire(0.5)
    assert not window.try_acquire(0.99)  # (0.0, 0.5, 0.99) would be 3 within one second
    assert window.try_acquire(1.0)  # 0.0 left the window
    assert not window.try_acquire(1.4)  # 0.5 and 1.0 are still in it
    assert window.try_acquire(1.5)


class TestQuotasDisabled:
    @pytest.fixture
    def emulator_options(self) -> EmulatorOptions:
        return EmulatorOptions(quotas_enabled=False)

    def test_no_call_is_throttled(self, ivs_client, stage) -> None:
        assert set(_burst(ivs_client.get_stage, 12, arn=stage["arn"])) == {"ok"}
