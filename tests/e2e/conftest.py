"""End-to-end fixtures: the emulator as its own process, as an operator runs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import background, wait_for_http
from tests.support.redis_server import free_port


@pytest.fixture
def emulator_url() -> Iterator[str]:
    port = free_port()
    with background("emulator", "--port", str(port), env={}) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/_emulator/health", proc=proc)
        yield url
