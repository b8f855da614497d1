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


def _without_the_emulator(*argv: str) -> subprocess.CompletedProcess[str]:
    """`token-service ARGV` in an install without the emulator (the service's wheel alone)."""
    probe = (
        "import sys; sys.modules['ivs_realtime_emulator'] = None; "
        "from token_service.cli.main import main; "
        f"sys.exit(main({list(argv)!r}))"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )


def test_emulator_command_without_the_emulator_says_how_to_install_it() -> None:
    result = _without_the_emulator("emulator")

    assert result.returncode == 2
    assert "not part of this install" in result.stderr
    assert "pip install ./emulator" in result.stderr


def test_serve_dev_without_the_emulator_says_how_to_install_it() -> None:
    result = _without_the_emulator("serve", "--dev")

    assert result.returncode == 2
    assert "serve --dev" in result.stderr
    assert "pip install ./emulator" in result.stderr


def test_other_commands_work_without_the_emulator() -> None:
    result = _without_the_emulator("--version")

    assert result.returncode == 0, result.stderr
