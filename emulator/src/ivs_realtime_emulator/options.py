"""How an emulator instance is configured: account, quotas, persistence, initial faults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivs_realtime_emulator.faults import FaultSpec


@dataclass(frozen=True)
class EmulatorOptions:
    """Everything `create_emulator_app` needs; the defaults suit tests and local work."""

    #: The account in every ARN the emulator makes.
    account_id: str = "123456789012"
    #: Enforce the documented per-operation request rates (ThrottlingException beyond).
    quotas_enabled: bool = True
    #: JSON file to load state from at start and save it to after every change.
    state_file: Path | None = None
    #: Faults in force at start, by operation name or `*`.
    faults: Mapping[str, FaultSpec] = field(default_factory=dict)
    #: Seed for the dice of injected faults (None: unpredictable).
    fault_seed: int | None = None
    #: Seconds a composition runs on without any participant in its stage (IVS: 60).
    composition_idle_timeout_seconds: float = 60.0
