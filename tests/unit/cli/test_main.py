"""The command's entry module loads nothing of the service until a command needs it: the
emulator, started as `token-service emulator`, must not carry the service's modules (a
heavier process paced its quota windows worse: seen as IVS throttling in the burst test)."""

from __future__ import annotations

import subprocess
import sys

SERVICE_MODULES = ("token_service.config", "token_service.bootstrap", "jwt", "litestar", "redis")


def test_importing_the_entry_point_loads_no_service_module() -> None:
    probe = (
        "import sys, token_service.cli.main; "
        f"print([m for m in {SERVICE_MODULES!r} if m in sys.modules])"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == "[]"
