"""The repository stands alone: no file names a place outside it.

Facts taken from elsewhere are restated in docs/ (with their public sources), and code,
docs and tests point there, never at a folder beside a checkout or a path of the machine
the code was written on: neither exists for whoever clones the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Spelled in pieces so that this file does not name them itself. The machine's workspace
# root only as a path of its own (after a space, a quote or a parenthesis), not as
# part of a URL or of a longer path.
OUTSIDE = (
    re.compile(re.escape("../" + "shared")),
    re.compile(re.escape("shared/" + "docs/")),
    re.compile(r"(?<![\w.\-/])/" + "work/"),
)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".ts", ".js", ".json", ".yml", ".yaml", ".txt", ".lua"}


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [
        ROOT / name
        for name in listed.split("\0")
        if name and Path(name).suffix in TEXT_SUFFIXES and (ROOT / name).is_file()
    ]


def test_no_tracked_file_names_a_place_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {needle.pattern}"
        for path in _tracked_text_files()
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        for needle in OUTSIDE
        if needle.search(line)
    ]
    assert found == []
