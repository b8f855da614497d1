"""Emulator test fixtures: quotas off unless a module turns them on; clients, a stage, a key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest
from botocore.config import Config as BotoConfig
from cryptography.hazmat.primitives.asymmetric import ec
from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer

from tests.helpers import new_p384_key, public_pem

if TYPE_CHECKING:
    from mypy_boto3_ivs_realtime import IvsrealtimeClient


@pytest.fixture
def emulator_options() -> EmulatorOptions:
    # Quotas off: these tests make bursts of calls that are not about rates.
    # test_quotas.py turns them back on.
    return EmulatorOptions(quotas_enabled=False)


@pytest.fixture
def make_client(
    emulator: EmulatorServer, emulator_boto3_session: boto3.session.Session
) -> Callable[..., IvsrealtimeClient]:
    """Clients of the emulator for another region, or without client-side validation."""

    def make(region: str = "us-east-1", validate: bool = True) -> IvsrealtimeClient:
        return emulator_boto3_session.client(
            "ivs-realtime",
            region_name=region,
            endpoint_url=emulator.url,
            config=BotoConfig(retries={"total_max_attempts": 1}, parameter_validation=validate),
        )

    return make


@pytest.fixture
def loose_client(make_client: Callable[..., IvsrealtimeClient]) -> IvsrealtimeClient:
    """No client-side validation: requests reach the emulator's own checks."""
    return make_client(validate=False)


@pytest.fixture
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, timeout=10) as client:
        yield client


@pytest.fixture
def stage(ivs_client: IvsrealtimeClient) -> dict[str, Any]:
    return dict(ivs_client.create_stage(name="stage-1")["stage"])


@pytest.fixture(scope="session")
def private_key() -> ec.EllipticCurvePrivateKey:
    return new_p384_key()


@pytest.fixture
def key_arn(ivs_client: IvsrealtimeClient, private_key: ec.EllipticCurvePrivateKey) -> str:
    """`private_key`'s public half, imported into the emulator: its ARN is the token's kid."""
    imported = ivs_client.import_public_key(publicKeyMaterial=public_pem(private_key), name="k1")
    return imported["publicKey"]["arn"]
