"""README.md documents every environment variable the service reads, and deployment.

A table row may abbreviate names that share a stem (`TOKEN_SERVICE_RATE_LIMIT_USER`,
`_IP`, `_STAGE`): a `_SUFFIX` stands for a full name of the same row with its tail
replaced by that suffix.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.settings_names import service_variables

README = Path(__file__).resolve().parents[2] / "README.md"
_FULL = re.compile(r"`(TOKEN_SERVICE_[A-Z0-9_]+)`")
_SHORT = re.compile(r"`(_[A-Z0-9_]+)`")


def documented() -> set[str]:
    text = README.read_text(encoding="utf-8")
    names = set(_FULL.findall(text))
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        first_cell = line.split("|")[1]
        full = _FULL.findall(first_cell)
        for suffix in _SHORT.findall(first_cell):
            for name in full:
                stems = [name[:i] for i, c in enumerate(name) if c == "_" and i > 0]
                names.update(stem + suffix for stem in stems)
    return names


@pytest.mark.parametrize("name", sorted(service_variables()))
def test_variable_is_documented(name: str) -> None:
    assert name in documented()


@pytest.mark.parametrize(
    "heading",
    ["Docker Compose", "Kubernetes", "Metrics", "Scaling", "Shutdown"],
)
def test_deployment_topic_has_a_section(heading: str) -> None:
    headings = [
        line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    ]
    assert any(heading.lower() in h.lower() for h in headings), heading
