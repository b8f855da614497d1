"""Smoke test of the soak (bench/soak.py) with a tiny duration: it runs end to end and reports.

No timing assertion, and no memory verdict (that needs minutes): only that every process
was sampled, every rule reported, and no request failed.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.bench_scripts import SMALL, run_bench
from tests.support.tools import needs_tool

pytestmark = needs_tool("redis-server", "the run starts its own Redis")


def test_short_soak_samples_every_process_and_reports_its_rules(tmp_path: Path) -> None:
    output = tmp_path / "soak.md"
    result = run_bench(
        "soak.py",
        *("--seconds", "4", "--interval", "1", "--rate", "50", "--no-fail"),
        *("--output", str(output), *SMALL),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = output.read_text()
    assert "200 answered 201; non-201 or broken: none" in text
    for rule in ("master RSS slope", "worker 1 RSS slope", "worker 2 open fds", "Redis connected"):
        assert rule in text
    samples = [line for line in text.splitlines() if line.startswith("| ") and " · " in line]
    assert len(samples) >= 4
