"""pytest fixtures: a fresh emulator per test, over real HTTP, and a boto3 client of it.

Load it with `-p ivs_realtime_emulator.pytest_plugin` (or `pytest_plugins = [...]` in a
top-level conftest). Override `emulator_options` in a module or conftest to start the
emulator differently (quotas off, faults, a state file). boto3 is needed only for
`ivs_client`; pytest itself is not a dependency of the emulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ivs_realtime_emulator.options import EmulatorOptions
from ivs_realtime_emulator.server import EmulatorServer

if TYPE_CHECKING:
    import boto3


@pytest.fixture(scope="session")
def emulator_boto3_session() -> boto3.session.Session:
    """One boto3 session for every client: botocore loads the service model once, not per test."""
    import boto3  # only the boto3 fixtures need it

    return boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="emulator",  # noqa: S106 - the emulator accepts any key
        region_name="us-east-1",
    )


@pytest.fixture
def emulator_options() -> EmulatorOptions:
    """How `emulator` starts; override this fixture in a module or conftest to change it."""
    return EmulatorOptions()


@pytest.fixture
def emulator(emulator_options: EmulatorOptions) -> Iterator[EmulatorServer]:
    """A fresh IVS real-time emulator for this test, listening on a free local port."""
    server = EmulatorServer(options=emulator_options).start()
    try:
        yield server
    finally:
        # Without waiting: uvicorn's shutdown takes ~0.2 s that no test needs to sit through.
        server.stop(wait=False)


@pytest.fixture
def ivs_client(emulator: EmulatorServer, emulator_boto3_session: boto3.session.Session) -> Any:
    """A boto3 `ivs-realtime` client of `emulator` (us-east-1), without retries.

    No retries, so a test sees every ThrottlingException and injected fault itself.
    """
    from botocore.config import Config

    return emulator_boto3_session.client(
        "ivs-realtime",
        endpoint_url=emulator.url,
        config=Config(retries={"total_max_attempts": 1}),
    )
