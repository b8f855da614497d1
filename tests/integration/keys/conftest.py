"""Fixtures of the key ring tests: the emulator without request quotas (these tests are about
the lifecycle, not IVS's rates), a settable clock, and a keys directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from ivs_realtime_emulator.options import EmulatorOptions

from tests.integration.keys.support import Clock


@pytest.fixture
def emulator_options() -> EmulatorOptions:
    return EmulatorOptions(quotas_enabled=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"
