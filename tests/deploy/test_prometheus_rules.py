"""deploy/prometheus: the rule files load in Prometheus (`promtool check rules`), their unit
tests pass (`promtool test rules`: each main alert fires on bad series and stays quiet on
good ones), and every alert tells the one paged what it is and where its runbook is."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.tools import needs_tool

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted(PROMETHEUS.glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
OPERATIONS = ROOT / "docs" / "operations.md"

promtool = needs_tool("promtool", "checks and unit-tests the Prometheus rules")


def promtool_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )


def rules() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in RULE_FILES:
        loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        found.extend(rule for group in loaded["groups"] for rule in group["rules"])
    return found


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


def test_there_are_rule_files_and_rule_tests() -> None:
    assert RULE_FILES
    assert RULE_TESTS


@promtool
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_accepts_the_rule_file(path: Path) -> None:
    checked = promtool_run("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@promtool
@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    tested = promtool_run("test", "rules", str(path))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_unit_tests_cover_the_main_alerts() -> None:
    tested = "".join(p.read_text(encoding="utf-8") for p in RULE_TESTS)
    for alert in (
        "TokenServiceServerErrors",
        "TokenServiceUnavailable",
        "TokenServiceTooManyRequests",
        "TokenServiceIvsBudgetRefusals",
        "TokenServiceRedisDegraded",
        "TokenServiceNoActiveSigningKey",
        "TokenServiceSigningKeyMissingAtIvs",
        "TokenServiceSigningKeyNearRetirement",
        "TokenServiceIssuanceLatencyBudgetBurn",
        "TokenServiceIssuanceLatencyBudgetBurnSlow",
    ):
        assert f"alertname: {alert}\n" in tested, alert


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_the_alert_has_a_summary_a_description_and_a_severity(alert: dict[str, Any]) -> None:
    assert alert["annotations"]["summary"]
    assert alert["annotations"]["description"]
    assert alert["labels"]["severity"] in {"page", "ticket"}


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_the_alert_runbook_is_a_section_of_the_operations_page(alert: dict[str, Any]) -> None:
    page, _, anchor = alert["annotations"]["runbook"].partition("#")
    assert page == "docs/operations.md"
    assert anchor in heading_anchors(OPERATIONS.read_text(encoding="utf-8"))


def test_every_recording_rule_used_is_defined() -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = {
        name for rule in rules() for name in re.findall(r"\b[a-z_]+:[a-z0-9_:]+\b", rule["expr"])
    }
    assert used <= recorded
