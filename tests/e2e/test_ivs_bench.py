"""A smoke run of `bench/ivs_latency.py` with tiny counts: it runs and writes its table."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "ivs_latency.py"


def test_latency_benchmark_writes_median_and_p99(tmp_path: Path) -> None:
    output = tmp_path / "ivs_latency.md"

    result = subprocess.run(
        [sys.executable, str(BENCH), "--requests", "5", "--warmup", "1", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    text = output.read_text(encoding="utf-8")
    assert "| median |" in text
    assert "| p99 |" in text
    assert "The service's gap to each floor at the median" in text
    if shutil.which("redis-server") is not None:
        # The floor with the service's own admission and record scripts answered 201s.
        assert "floor + the service's 2 scripts" in text
