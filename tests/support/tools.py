"""Tests that need a program of the machine (not a Python package): skipped where it is
missing on a developer's machine, but a failure under CI, where `.ci/run` installs every one
of them, so a skip can never hide a broken install there. Python packages the tests use are
in the test extras (the lock) and imported plainly: a missing one fails at once."""

from __future__ import annotations

import os
import shutil

import pytest

#: Set by the CI runner (`CI=true bash .ci/run`).
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def tool_present(tool: str) -> bool:
    """`tool` is on PATH, or, given as a path, an executable file there."""
    if os.sep in tool:
        return os.access(tool, os.X_OK)
    return shutil.which(tool) is not None


def needs_tool(tool: str, why: str) -> pytest.MarkDecorator:
    """Mark a test (or module, as `pytestmark`) that runs `tool`; `why` says what for."""
    return pytest.mark.needs_tool(tool=tool, why=why)


def check_tools(item: pytest.Item) -> None:
    """Called before each test (root conftest): skip or, under CI, fail on a missing tool."""
    for mark in item.iter_markers("needs_tool"):
        tool, why = mark.kwargs["tool"], mark.kwargs["why"]
        if tool_present(tool):
            continue
        message = f"{tool} is missing ({why}); .ci/run installs it"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
