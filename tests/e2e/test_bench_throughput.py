"""Smoke test of bench/run.py with tiny counts: it runs end to end and writes its figures.

No timing assertion: only that every figure is there and each request was one EVALSHA.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.tools import needs_tool

ROOT = Path(__file__).resolve().parents[2]


@needs_tool("redis-server", "the bench starts its own Redis")
def test_bench_quick_run_writes_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = output.read_text()
    figures = ("baseline ES384", "saturation", "ratio service / baseline", "p99")
    for figure in (*figures, "the floor in the same run", "the floor's CPU per token"):
        assert figure in text
    assert "Redis round trips (EVALSHA) per token: **1.000**" in text
    assert "non-201: none" in text
