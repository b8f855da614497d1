"""GET /metrics: the text exposition parses, and carries what operators alert on.

Parsed with prometheus_client's own parser, as Prometheus would read it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.http.conftest import ADMIN_TOKEN, MintUserToken, bearer
from token_service.config import load_settings
from token_service.keys import SigningKey

USER = "metrics-user-4711"


@pytest.fixture
async def scraped(
    signing_key: SigningKey,
    make_app: Callable[..., Litestar],
    stage_arn: str,
    user_token: MintUserToken,
) -> dict[str, Any]:
    """One issued token, one refused request, an admin call; then the exposition."""
    async with AsyncTestClient(app=make_app()) as client:
        user_jwt = user_token(sub=USER)
        issued = await client.post(
            "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user_jwt)
        )
        assert issued.status_code == 201
        assert (await client.post("/v1/participant-tokens", json={})).status_code == 401
        admin = await client.get("/admin/keys", headers=bearer(ADMIN_TOKEN))
        assert admin.status_code == 200
        response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        "text": response.text,
        "content_type": response.headers["content-type"],
        "families": {f.name: f for f in text_string_to_metric_families(response.text)},
        "secrets": [user_jwt, issued.json()["token"], issued.json()["participantId"], USER],
    }


def samples(scraped: dict[str, Any], family: str) -> list[Sample]:
    assert family in scraped["families"], sorted(scraped["families"])
    return list(scraped["families"][family].samples)


def test_content_type_is_the_classic_text_format(scraped: dict[str, Any]) -> None:
    assert scraped["content_type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_tokens_issued_by_signer(scraped: dict[str, Any]) -> None:
    family = samples(scraped, "token_service_tokens_issued")
    issued = [s for s in family if s.name.endswith("_total")]
    assert [(s.labels["signer"], s.value) for s in issued] == [("local", 1.0)]


def test_issue_outcomes_by_signer(scraped: dict[str, Any]) -> None:
    family = samples(scraped, "token_service_issue_outcomes")
    outcomes = {(s.labels["signer"], s.labels["outcome"]): s.value for s in family}
    assert outcomes[("local", "issued")] == 1.0


def test_mapping_writes_by_outcome(scraped: dict[str, Any]) -> None:
    family = samples(scraped, "token_service_mapping_writes")
    written = {s.labels["outcome"]: s.value for s in family if s.name.endswith("_total")}
    assert written == {"written": 1.0}


@pytest.fixture
def failing_create(emulator: Any) -> None:
    """Every CreateParticipantToken fails at the emulator."""
    httpx.post(
        f"{emulator.url}/_emulator/faults",
        json={"operation": "CreateParticipantToken", "errorRate": 1.0},
        timeout=5,
    ).raise_for_status()


async def test_a_failed_ivs_issue_is_counted_by_signer_and_problem_code(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    failing_create: None,
    stage_arn: str,
    user_token: MintUserToken,
) -> None:
    settings = load_settings(
        {**env, "TOKEN_SERVICE_MODE": "ivs", "TOKEN_SERVICE_IVS_MAX_ATTEMPTS": "1"}
    )
    async with AsyncTestClient(app=make_app(settings=settings)) as client:
        failed = await client.post(
            "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user_token())
        )
        text = (await client.get("/metrics")).text
    assert failed.status_code >= 500
    family = next(
        f for f in text_string_to_metric_families(text) if f.name == "token_service_issue_outcomes"
    )
    outcomes = {(s.labels["signer"], s.labels["outcome"]) for s in family.samples if s.value}
    assert outcomes == {("ivs", failed.json()["type"].rsplit("/", 1)[-1])}


def test_request_latency_is_a_histogram_by_route_template(scraped: dict[str, Any]) -> None:
    family = scraped["families"]["token_service_http_request_duration_seconds"]
    assert family.type == "histogram"
    paths = {s.labels["path"] for s in family.samples}
    assert "/v1/participant-tokens" in paths
    assert "/admin/keys" in paths


def test_requests_are_counted_by_method_route_template_and_status(
    scraped: dict[str, Any],
) -> None:
    counted = {
        (s.labels["method"], s.labels["path"], s.labels["status_code"]): s.value
        for s in samples(scraped, "token_service_http_requests")
        if s.name.endswith("_total")
    }
    assert counted == {
        ("POST", "/v1/participant-tokens", "201"): 1.0,
        ("POST", "/v1/participant-tokens", "401"): 1.0,
        ("GET", "/admin/keys", "200"): 1.0,
    }


def test_the_scrape_and_the_probes_are_not_counted(scraped: dict[str, Any]) -> None:
    paths = {
        s.labels["path"] for s in samples(scraped, "token_service_http_request_duration_seconds")
    }
    assert not paths & {"/metrics", "/healthz", "/readyz"}


def test_no_request_is_left_in_progress_once_answered(scraped: dict[str, Any]) -> None:
    in_progress = samples(scraped, "token_service_http_requests_in_progress")
    assert in_progress
    assert all(s.value == 0 for s in in_progress)


def test_the_in_progress_gauge_has_no_status_label(scraped: dict[str, Any]) -> None:
    in_progress = samples(scraped, "token_service_http_requests_in_progress")
    assert {frozenset(s.labels) for s in in_progress} == {frozenset({"method", "path"})}


def test_no_created_series_is_exposed(scraped: dict[str, Any]) -> None:
    names = {s.name for f in scraped["families"].values() for s in f.samples}
    assert not {n for n in names if n.endswith("_created")}


def test_no_series_carries_a_constant_app_name_label(scraped: dict[str, Any]) -> None:
    labels = {k for f in scraped["families"].values() for s in f.samples for k in s.labels}
    assert "app_name" not in labels


def test_server_errors_have_no_family_of_their_own(scraped: dict[str, Any]) -> None:
    # They are `token_service_http_requests_total{status_code=~"5.."}`.
    assert "token_service_http_requests_error" not in scraped["families"]


def test_budget_decisions_are_counted_by_ivs_operation(scraped: dict[str, Any]) -> None:
    operations = {
        s.labels["operation"]
        for s in samples(scraped, "token_service_ivs_budget_decisions")
        if s.name.endswith("_total")
    }
    # Local mode looks the stage up (GetStage), paced by its budget.
    assert "GetStage" in operations


def test_rate_limit_decisions_by_limit_and_outcome(scraped: dict[str, Any]) -> None:
    decided = {
        (s.labels["limit"], s.labels["outcome"])
        for s in samples(scraped, "token_service_rate_limit_decisions")
        if s.name.endswith("_total")
    }
    assert {("user", "allowed"), ("ip", "allowed"), ("stage", "allowed")} <= decided


def test_refusals_by_problem_code(scraped: dict[str, Any]) -> None:
    codes = {s.labels["code"] for s in samples(scraped, "token_service_request_errors")}
    assert codes


def test_ivs_calls_by_operation_and_outcome(scraped: dict[str, Any]) -> None:
    calls = {
        (s.labels["operation"], s.labels["outcome"])
        for s in samples(scraped, "token_service_ivs_calls")
        if s.name.endswith("_total")
    }
    assert ("GetStage", "ok") in calls


def test_signing_keys_by_status_from_the_ring(scraped: dict[str, Any]) -> None:
    family = samples(scraped, "token_service_signing_keys")
    by_status = {s.labels["status"]: s.value for s in family}
    assert by_status == {"active": 1.0, "next": 0.0, "retiring": 0.0}


def test_active_key_age_is_reported(scraped: dict[str, Any]) -> None:
    (active,) = samples(scraped, "token_service_signing_key_active_seconds")
    assert active.value >= 0


@pytest.mark.parametrize(
    "family",
    [
        "token_service_rate_limit_degraded",
        "token_service_issue_duration_seconds",
        "token_service_signing_key_age_seconds",
    ],
)
def test_family_is_exposed(scraped: dict[str, Any], family: str) -> None:
    assert family in scraped["families"]


def test_no_user_id_token_or_participant_id_in_any_label(scraped: dict[str, Any]) -> None:
    values = {
        value
        for family in scraped["families"].values()
        for sample in family.samples
        for value in sample.labels.values()
    }
    for secret in scraped["secrets"]:
        assert not any(secret in value for value in values)
        assert secret not in scraped["text"]
