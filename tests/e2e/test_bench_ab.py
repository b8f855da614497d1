"""Smoke test of bench/ab.py: two deployments side by side, one pair of bursts, a report.

No timing assertion: only that both versions served every request and each figure is
reported (here both sides are this checkout).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.tools import needs_tool

ROOT = Path(__file__).resolve().parents[2]


@needs_tool("redis-server", "the bench starts its own Redis")
def test_ab_reports_each_figure_for_both_checkouts() -> None:
    command = [sys.executable, str(ROOT / "bench" / "ab.py"), "--before", str(ROOT)]
    command += ["--pairs", "1", "--seconds", "1", "--users", "20", "--stages", "3"]
    result = subprocess.run(
        [*command, "--workers", "1", "--connections", "4"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for figure in ("- workers: A", "- generator: A", "- rate: A"):
        assert figure in result.stdout
