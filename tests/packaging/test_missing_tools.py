"""A test that needs a program of the machine is skipped without it on a developer's
machine, and fails under CI, where `.ci/run` installs every such program: a skip there
would hide a broken install."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import tools

ABSENT = "/nonexistent/tool-that-is-not-here"


class _Item:
    def __init__(self, *marks: pytest.MarkDecorator) -> None:
        self._marks = [m.mark for m in marks]

    def iter_markers(self, name: str) -> Iterator[pytest.Mark]:
        return (m for m in self._marks if m.name == name)


def test_a_missing_tool_fails_the_test_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "IN_CI", True)

    with pytest.raises(pytest.fail.Exception, match="tool-that-is-not-here is missing"):
        tools.check_tools(_Item(tools.needs_tool(ABSENT, "a test")))  # type: ignore[arg-type]


def test_a_missing_tool_skips_the_test_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "IN_CI", False)

    with pytest.raises(pytest.skip.Exception, match=r"\.ci/run installs it"):
        tools.check_tools(_Item(tools.needs_tool(ABSENT, "a test")))  # type: ignore[arg-type]


def test_a_present_tool_lets_the_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "IN_CI", True)

    tools.check_tools(_Item(tools.needs_tool("sh", "a test")))  # type: ignore[arg-type]


def test_no_test_skips_itself_for_a_missing_python_package() -> None:
    """Test dependencies are in the lock: importing one that is missing must fail."""
    root = Path(__file__).resolve().parents[1]
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "importorskip(" in path.read_text(encoding="utf-8") and path != Path(__file__)
    ]

    assert offenders == []
