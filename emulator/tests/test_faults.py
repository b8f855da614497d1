"""Injected faults: `POST/GET/DELETE /_emulator/faults`, and faults set at start."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError
from ivs_realtime_emulator.faults import FaultSpec
from ivs_realtime_emulator.options import EmulatorOptions


def _code(call, **params) -> str:
    try:
        call(**params)
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def test_error_rate_one_fails_every_call_with_internal_server_exception(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "ListStages", "errorRate": 1.0})

    with pytest.raises(ClientError) as raised:
        ivs_client.list_stages()

    assert raised.value.response["Error"]["Code"] == "InternalServerException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_injected_error_code_is_configurable(http, ivs_client) -> None:
    http.post(
        "/_emulator/faults",
        json={"operation": "CreateStage", "errorRate": 1.0, "error": "AccessDeniedException"},
    )

    with pytest.raises(ivs_client.exceptions.AccessDeniedException) as raised:
        ivs_client.create_stage()

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_throttle_rate_one_throttles_every_call(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "ListStages", "throttleRate": 1.0})

    assert _code(ivs_client.list_stages) == "ThrottlingException"


def test_failed_call_changes_nothing(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "CreateStage", "errorRate": 1.0})

    _code(ivs_client.create_stage)

    http.delete("/_emulator/faults")
    assert ivs_client.list_stages()["stages"] == []


def test_faults_apply_to_their_operation_only(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "ListStages", "errorRate": 1.0})

    assert _code(ivs_client.list_public_keys) == "ok"


def test_star_applies_to_every_operation(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "*", "errorRate": 1.0})

    assert _code(ivs_client.list_stages) == "InternalServerException"
    assert _code(ivs_client.list_public_keys) == "InternalServerException"


def test_operation_entry_wins_over_star(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "*", "errorRate": 1.0})
    http.post("/_emulator/faults", json={"operation": "ListStages"})

    assert _code(ivs_client.list_stages) == "ok"
    assert _code(ivs_client.list_public_keys) == "InternalServerException"


def test_posting_again_replaces_the_operation_faults(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "ListStages", "errorRate": 1.0})
    http.post("/_emulator/faults", json={"operation": "ListStages", "throttleRate": 1.0})

    assert _code(ivs_client.list_stages) == "ThrottlingException"
    faults = http.get("/_emulator/faults").json()["faults"]
    assert faults["ListStages"]["errorRate"] == 0.0


def test_delete_clears_every_fault(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "*", "errorRate": 1.0})

    response = http.delete("/_emulator/faults")

    assert response.status_code == 200
    assert _code(ivs_client.list_stages) == "ok"
    assert http.get("/_emulator/faults").json() == {"faults": {}}


def test_post_answers_the_fault_in_force(http) -> None:
    response = http.post("/_emulator/faults", json={"operation": "GetStage", "latencyMs": 5})

    assert response.status_code == 200
    assert response.json() == {
        "operation": "GetStage",
        "latencyMs": 5,
        "errorRate": 0.0,
        "error": "InternalServerException",
        "throttleRate": 0.0,
    }


def test_latency_delays_the_answer(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "ListStages", "latencyMs": 300})

    started = time.monotonic()
    ivs_client.list_stages()

    assert time.monotonic() - started >= 0.25


def test_latency_does_not_block_other_requests(http, ivs_client, make_client) -> None:
    http.post("/_emulator/faults", json={"operation": "ListStages", "latencyMs": 1000})
    slow = threading.Thread(target=make_client().list_stages)
    slow.start()
    time.sleep(0.05)

    started = time.monotonic()
    ivs_client.list_public_keys()
    elapsed = time.monotonic() - started
    slow.join()

    assert elapsed < 0.7  # far below the 1 s the delayed call takes


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"operation": "NoSuchOperation"},
        {"operation": "*", "errorRate": 1.5},
        {"operation": "*", "errorRate": "0.5"},
        {"operation": "*", "throttleRate": -0.1},
        {"operation": "*", "latencyMs": -1},
        {"operation": "*", "latencyMs": 1.5},
        {"operation": "*", "error": "NoSuchError"},
        {"operation": "*", "surprise": True},
        [],
    ],
)
def test_invalid_fault_body_is_rejected(http, body) -> None:
    response = http.post("/_emulator/faults", json=body)

    assert response.status_code == 400
    assert response.json()["reason"] == "invalid_request"


def test_fault_body_that_is_not_json_is_rejected(http) -> None:
    response = http.post("/_emulator/faults", content=b"{")

    assert response.status_code == 400


def test_stats_count_injected_failures(http, ivs_client) -> None:
    http.post("/_emulator/faults", json={"operation": "ListStages", "errorRate": 1.0})
    _code(ivs_client.list_stages)
    _code(ivs_client.list_stages)

    stats = http.get("/_emulator/stats").json()["operations"]["ListStages"]

    assert stats == {"calls": 2, "throttled": 0, "failed": 2, "maxPerSecond": 2}


class TestFaultsAtStart:
    @pytest.fixture
    def emulator_options(self) -> EmulatorOptions:
        return EmulatorOptions(quotas_enabled=False, faults={"*": FaultSpec(error_rate=1.0)})

    def test_faults_from_options_are_in_force(self, ivs_client) -> None:
        assert _code(ivs_client.list_stages) == "InternalServerException"


class TestFaultSeed:
    @pytest.fixture
    def emulator_options(self) -> EmulatorOptions:
        return EmulatorOptions(
            quotas_enabled=False, faults={"*": FaultSpec(error_rate=0.5)}, fault_seed=7
        )

    def test_half_the_calls_fail(self, ivs_client) -> None:
        outcomes = [_code(ivs_client.list_stages) for _ in range(40)]

        assert 5 <= outcomes.count("InternalServerException") <= 35
