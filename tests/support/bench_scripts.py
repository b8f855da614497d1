"""Running the bench/ scripts as the smoke tests do: as a user would, from the checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: A deployment small enough for a smoke test: few users, stages and connections.
SMALL = ["--users", "20", "--stages", "3", "--connections", "8", "--workers", "2"]


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python bench/<script> <args>` from the checkout's root, output captured."""
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
    )
