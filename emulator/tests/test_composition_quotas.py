"""Request rates of the composition, encoder and storage configuration operations: 5 TPS each."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.quotas import RATE_LIMITS

NEW_OPERATIONS = (
    "StartComposition",
    "GetComposition",
    "ListCompositions",
    "StopComposition",
    "CreateEncoderConfiguration",
    "GetEncoderConfiguration",
    "ListEncoderConfigurations",
    "DeleteEncoderConfiguration",
    "CreateStorageConfiguration",
    "GetStorageConfiguration",
    "ListStorageConfigurations",
    "DeleteStorageConfiguration",
)


@pytest.fixture
def emulator_options() -> EmulatorOptions:
    return EmulatorOptions()  # quotas on, as by default


def _burst(call, count: int, **params) -> list[str]:
    outcomes = []
    for _ in range(count):
        try:
            call(**params)
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    return outcomes


@pytest.mark.parametrize("operation", NEW_OPERATIONS)
def test_documented_rate_is_5_per_second(operation) -> None:
    assert RATE_LIMITS[operation] == 5


def test_fifth_list_compositions_within_a_second_is_accepted(ivs_client) -> None:
    assert _burst(ivs_client.list_compositions, 5) == ["ok"] * 5


def test_sixth_list_compositions_within_a_second_is_throttled(ivs_client) -> None:
    assert _burst(ivs_client.list_compositions, 6)[5] == "ThrottlingException"


def test_sixth_create_encoder_configuration_within_a_second_is_throttled(ivs_client) -> None:
    outcomes = _burst(ivs_client.create_encoder_configuration, 6)

    assert outcomes == ["ok"] * 5 + ["ThrottlingException"]


def test_sixth_list_storage_configurations_within_a_second_is_throttled(ivs_client) -> None:
    outcomes = _burst(ivs_client.list_storage_configurations, 6)

    assert outcomes == ["ok"] * 5 + ["ThrottlingException"]
