"""deploy/grafana/token-service.json: a Grafana dashboard that imports anywhere (its
Prometheus chosen through the `datasource` variable) with the panels operators need."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "token-service.json"


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def test_the_data_source_is_a_prometheus_variable() -> None:
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")


def test_every_panel_and_query_reads_the_data_source_variable() -> None:
    for panel in dashboard()["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_the_schema_version_is_a_current_one() -> None:
    assert 36 <= dashboard()["schemaVersion"] <= 41


def test_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_latency_quantiles_read_the_issuance_histogram() -> None:
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    quantiles = [e for e in exprs if e.startswith("histogram_quantile")]
    assert {e.split("(", 1)[1].split(",")[0] for e in quantiles} == {"0.5", "0.99"}
    assert all("token_service_issue_duration_seconds_bucket" in e for e in quantiles)
