"""Every metric the rules of deploy/prometheus and the dashboard of deploy/grafana read is
one the service exposes: read from a real app's /metrics after one issued token (families
with no sample yet are listed too), each family mapped to the series Prometheus stores
(`_total` for a counter; `_bucket`, `_count`, `_sum` for a histogram)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.http.conftest import ADMIN_TOKEN, SHARED_SECRET, bearer, rotate_key
from token_service.auth import mint_user_token
from token_service.bootstrap.app import create_app
from token_service.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
#: A service metric's name, not a recorded one (`job:token_service_...`).
_SERVICE_METRIC = re.compile(r"(?<![\w:])token_service_[a-z0-9_]+(?![\w:])")
_SERIES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


def rule_expressions() -> Iterator[tuple[str, str]]:
    for path in sorted((ROOT / "deploy" / "prometheus").glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                yield path.name, rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "token-service.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["name"], variable["definition"]


def used_names() -> list[tuple[str, str]]:
    return sorted(
        {
            (where, name)
            for where, expr in [*rule_expressions(), *dashboard_expressions()]
            for name in _SERVICE_METRIC.findall(expr)
        }
    )


@pytest.fixture
def keys_dir(tmp_path: Path, ivs_client: Any) -> Path:
    """A signing key, imported into IVS (before any event loop runs: `rotate_key` runs one)."""
    rotate_key(ivs_client, tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
async def exposed(keys_dir: Path, emulator: Any, ivs_client: Any) -> set[str]:
    stage_arn = ivs_client.create_stage(name="metric-names")["stage"]["arn"]
    settings = load_settings(
        {
            "TOKEN_SERVICE_IVS_ENDPOINT_URL": emulator.url,
            "TOKEN_SERVICE_AWS_REGION": "us-east-1",
            "TOKEN_SERVICE_KEYS_DIR": str(keys_dir),
            "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
            "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
        }
    )
    async with AsyncTestClient(app=create_app(settings, ivs_client=ivs_client)) as client:
        user = mint_user_token(SHARED_SECRET.encode(), sub="metric-names")
        issued = await client.post(
            "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user)
        )
        assert issued.status_code == 201
        assert (await client.get("/readyz")).status_code == 200
        text = (await client.get("/metrics", headers=bearer(ADMIN_TOKEN))).text
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in _SERIES.get(family.type, ("",))
    }


def test_the_rules_and_the_dashboard_read_service_metrics() -> None:
    assert len({name for _, name in used_names()}) > 10


def test_every_metric_the_rules_and_the_dashboard_read_is_exposed(exposed: set[str]) -> None:
    missing = [f"{where}: {name}" for where, name in used_names() if name not in exposed]
    assert not missing
