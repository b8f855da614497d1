"""`token-service ...`: the command-line entry point (filled in by the following commits)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="token-service")
    parser.parse_args(argv)
    return 0
