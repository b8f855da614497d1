"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisProcess


@pytest.fixture
def server() -> Iterator[RedisProcess]:
    """A redis-server of the test's own, which it may stop, restart, pause and resume."""
    process = RedisProcess().start()
    try:
        yield process
    finally:
        process.close()
