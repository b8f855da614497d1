"""Instructions per token of the token path, counted by callgrind: a figure noise cannot move.

CPU time per token on this shared 2-core machine moves by 5-10% from one run to the next,
more than most single changes to the token path are worth. The number of instructions a
token costs moves by well under 1%: this runs bench/inprocess.py under valgrind's
callgrind twice, with `--small` and `--large` tokens (one at a time, a fixed hash seed,
the warm-up as long as the run), and reports the difference over the tokens between
them: set-up, imports and start-up cancel out. The signature's instructions are in it
(about 2.6 M of a token's ~4.2 M here), as in a token.

Instructions are not time (a cache miss or a system call costs more than its
instructions say, and the kernel's share is not counted), so this is for telling two
versions, or a part switched on and off (`--without`, see bench/inprocess.py), apart:

    python bench/instructions.py
    python bench/instructions.py --without metrics
    python bench/instructions.py --small 100 --large 600

Needs valgrind (`apt-get install valgrind`); each run takes a minute or two.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(tokens: int, extra: list[str]) -> int:
    """All instructions of one run of bench/inprocess.py with `tokens` tokens (and as many
    in its warm-up)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp:
        command = [valgrind, "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out"]
        command += [sys.executable, str(HERE / "inprocess.py"), "--tokens", str(tokens)]
        command += ["--rounds", "1", "--concurrency", "1", *extra]
        done = subprocess.run(
            command,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=False,
        )
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"inprocess.py under callgrind failed:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=600)
    args, extra = parser.parse_known_args()
    # The two runs at once: one core each.
    with ThreadPoolExecutor(2) as pool:
        small, large = pool.map(lambda n: instructions(n, extra), (args.small, args.large))
    # Each run issues its count twice (the warm-up, then the measured round).
    per_token = (large - small) / (2 * (args.large - args.small))
    label = " ".join(extra) or "as deployed"
    print(f"{per_token / 1e6:.3f} M instructions per token ({label})")


if __name__ == "__main__":
    main()
