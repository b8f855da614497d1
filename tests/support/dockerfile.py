"""Reads the instructions of the repository's Dockerfile, so tests run exactly what it says."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """ENV key=value pairs in order (values unquoted, `${VAR}` left as written)."""
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def exec_form(self, keyword: str) -> list[str]:
        args = self.last(keyword)
        if args is None:
            return []
        parsed: list[str] = json.loads(args)
        return parsed

    def healthcheck(self) -> list[str]:
        """The HEALTHCHECK's exec-form command, options stripped."""
        args = self.last("HEALTHCHECK") or ""
        _, _, command = args.partition("CMD ")
        parsed: list[str] = json.loads(command)
        return parsed


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current:
            lines.append(current)
        current = ""
    return lines


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    result: list[Stage] = []
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            result.append(Stage(base=parts[0], name=name))
        elif result:
            result[-1].instructions.append((keyword, args))
    return result


def final_stage(path: Path = DOCKERFILE) -> Stage:
    return stages(path)[-1]
