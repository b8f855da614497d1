"""Smoke test of the uniqueness run (bench/uniqueness.py) with a few hundred tokens.

It runs end to end against the deployed service: every 201's participant ID distinct, its
token's jti the same, and one mapping record in Redis per 201. No timing assertion.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.bench_scripts import SMALL, run_bench
from tests.support.tools import needs_tool

pytestmark = needs_tool("redis-server", "the run starts its own Redis")


def test_small_uniqueness_run_finds_no_repeat_and_one_record_per_token(tmp_path: Path) -> None:
    output = tmp_path / "uniqueness.md"
    result = run_bench("uniqueness.py", "--tokens", "500", "--output", str(output), *SMALL)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    text = output.read_text()
    assert "distinct participantId: **500**; distinct jti: **500**" in text
    assert "mapping records in Redis: **500** (missing for a 201: 0; without a 201: 0," in text
    assert "no participant ID issued twice: **PASS**; every 201 recorded: **PASS**" in text
