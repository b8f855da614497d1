"""docs/configuration.md documents every environment variable the service reads,
docs/operations.md each deployment topic, and the README links every page of docs/.

A table row may abbreviate names that share a stem (`TOKEN_SERVICE_RATE_LIMIT_USER`,
`_IP`, `_STAGE`): a `_SUFFIX` stands for a full name of the same row with its tail
replaced by that suffix.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.settings_names import service_variables

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
OPERATIONS = ROOT / "docs" / "operations.md"
_FULL = re.compile(r"`(TOKEN_SERVICE_[A-Z0-9_]+)`")
_SHORT = re.compile(r"`(_[A-Z0-9_]+)`")


def documented() -> set[str]:
    text = CONFIGURATION.read_text(encoding="utf-8")
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
        line for line in OPERATIONS.read_text(encoding="utf-8").splitlines() if line.startswith("#")
    ]
    assert any(heading.lower() in h.lower() for h in headings), heading


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "docs").glob("*.md")))
def test_the_readme_links_every_docs_page(page: str) -> None:
    assert f"](docs/{page})" in README.read_text(encoding="utf-8")


def _links(path: Path) -> list[tuple[Path, str]]:
    """Each relative link of a markdown file: the file it names and the anchor, if any."""
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        found.append(((path.parent / file).resolve() if file else path, anchor))
    return found


def _anchors(path: Path) -> set[str]:
    headings = [
        line.lstrip("#").strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize(
    "page", ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
)
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: str) -> None:
    broken = [
        f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}#{anchor}"
        for target, anchor in _links(ROOT / page)
        if not target.exists()
        or (anchor and target.suffix == ".md" and anchor not in _anchors(target))
    ]
    assert broken == []
