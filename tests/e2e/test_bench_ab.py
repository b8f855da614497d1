"""Smoke test of bench/ab.py: two deployments side by side, one pair of bursts, a report.

No timing assertion: only that both versions served every request and each figure is
reported (here both sides are this checkout).
"""

from __future__ import annotations

from tests.support.bench_scripts import ROOT, SMALL, run_bench
from tests.support.tools import needs_tool


@needs_tool("redis-server", "the bench starts its own Redis")
def test_ab_reports_each_figure_for_both_checkouts() -> None:
    result = run_bench("ab.py", "--before", str(ROOT), "--pairs", "1", "--seconds", "1", *SMALL)
    assert result.returncode == 0, result.stderr[-3000:]
    for figure in ("- workers: A", "- generator: A", "- rate: A"):
        assert figure in result.stdout
