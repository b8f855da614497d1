"""The OpenAPI document says what the service really does (found by the schemathesis run,
tests/http/test_openapi_fuzz.py): error bodies, media types, closed request bodies, the
stage ARN rule, and OPTIONS answers."""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import pytest

from tests.http.conftest import ADMIN_TOKEN, SHARED_SECRET
from token_service.bootstrap.app import create_app
from token_service.config import load_settings
from token_service.errors import InvalidRequest
from token_service.ivs.stages import parse_stage_arn

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document the app serves at /schema/openapi.json (built, nothing started)."""
    settings = load_settings(
        {
            # Never called: the document is built without starting the app.
            "TOKEN_SERVICE_IVS_ENDPOINT_URL": "http://127.0.0.1:9",
            "TOKEN_SERVICE_AWS_REGION": "us-east-1",
            "TOKEN_SERVICE_KEYS_DIR": str(tmp_path_factory.mktemp("keys")),
            "TOKEN_SERVICE_AUTH_SHARED_SECRET": SHARED_SECRET,
            "TOKEN_SERVICE_ADMIN_TOKENS": ADMIN_TOKEN,
        }
    )
    schema: dict[str, Any] = create_app(settings).openapi_schema.to_schema()
    return schema


def test_the_document_carries_the_installed_package_version(document: dict[str, Any]) -> None:
    assert document["info"]["version"] == version("ivs-token-service")


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_request_bodies_that_refuse_unknown_fields_are_closed(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in (
        "TokenRequestBody",
        "ExchangeRequestBody",
        "CapabilitiesRequestBody",
        "BanRequestBody",
        "DisconnectBody",
    ):
        assert schemas[name]["additionalProperties"] is False, name


def test_every_error_a_route_declares_is_a_problem_json_body(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path == "/readyz":
                continue
            assert set(response["content"]) == {PROBLEM}, (method, path, status)
            assert response["content"][PROBLEM]["schema"] == {
                "$ref": "#/components/schemas/Problem"
            }


def test_every_route_with_parameters_or_a_body_declares_its_400(
    document: dict[str, Any],
) -> None:
    for method, path, operation in _operations(document):
        if operation.get("parameters") or operation.get("requestBody"):
            assert "400" in operation["responses"], (method, path)


def test_metrics_are_documented_as_prometheus_text(document: dict[str, Any]) -> None:
    content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain; version=0.0.4"]


def test_readyz_documents_its_503_with_the_health_body(document: dict[str, Any]) -> None:
    unavailable = document["paths"]["/readyz"]["get"]["responses"]["503"]
    assert unavailable["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Health"
    }


def test_ivs_events_documents_its_body_and_its_secret(document: dict[str, Any]) -> None:
    operation = document["paths"]["/v1/ivs-events"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/StageUpdateEvent"}
    assert operation["security"] == [{"eventsSecret": []}]
    assert "eventsSecret" in document["components"]["securitySchemes"]


def test_capabilities_are_documented_as_one_or_two(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("TokenRequestBody", "ExchangeRequestBody"):
        capabilities = schemas[name]["properties"]["capabilities"]
        assert (capabilities["minItems"], capabilities["maxItems"]) == (1, 2), name


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456",
        "arn:aws:ivs:eu-west-1:000000000000:stage/a-b",
        "arn:aws:ivs:us-east-1:12345678901:stage/AbCdEf123456",
        "arn:aws:ivs:us-east-1:123456789012:stage/",
        "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456\n",
        "arn:aws:ivs:us-east-1:123456789012:channel/AbCdEf123456",
        "arn:aws-cn:ivs:cn-north-1:123456789012:stage/AbCdEf123456",
        "xarn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456",
    ],
)
def test_the_documented_stage_arn_pattern_is_the_rule_the_service_applies(
    document: dict[str, Any], arn: str
) -> None:
    pattern = document["components"]["schemas"]["TokenRequestBody"]["properties"]["stageArn"][
        "pattern"
    ]
    try:
        parse_stage_arn(arn)
        accepted = True
    except InvalidRequest:
        accepted = False
    # Anchored at both ends, where (unlike Python's) an ECMA `$` admits no final newline.
    whole = pattern.removeprefix("^").removesuffix("$")
    assert (re.fullmatch(whole, arn) is not None) == accepted


def test_ban_until_is_documented_as_a_date_time(document: dict[str, Any]) -> None:
    until = document["components"]["schemas"]["BanRequestBody"]["properties"]["until"]
    assert until["format"] == "date-time"


def test_attributes_document_their_keys_values_and_count(document: dict[str, Any]) -> None:
    no_control = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    for name in ("TokenRequestBody", "ExchangeRequestBody"):
        attributes = document["components"]["schemas"][name]["properties"]["attributes"]
        assert attributes["maxProperties"] == 64
        assert attributes["propertyNames"] == {
            "type": "string",
            "minLength": 1,
            "maxLength": 128,
            "pattern": no_control,
        }
        assert attributes["additionalProperties"] == {
            "type": "string",
            "maxLength": 1024,
            "pattern": no_control,
        }
        assert "1023 bytes of UTF-8" in attributes["description"]


@pytest.mark.parametrize(
    ("arn", "accepted"),
    [
        ("arn:aws:ivs:us-east-1:123456789012:stage/AbCd", True),
        ("arn:aws:ivs:us-east-1:123456789012:stage/AbCd/participants", False),
    ],
)
def test_the_stage_participants_query_documents_the_stage_arn_rule(
    document: dict[str, Any], arn: str, accepted: bool
) -> None:
    (stage,) = [
        p
        for p in document["paths"]["/admin/participants"]["get"]["parameters"]
        if p["name"] == "stageArn"
    ]
    assert (stage["in"], stage["required"]) == ("query", True)
    whole = stage["schema"]["pattern"].removeprefix("^").removesuffix("$")
    assert (re.fullmatch(whole, arn) is not None) == accepted


def test_every_operation_has_an_explicit_lower_camel_case_id(document: dict[str, Any]) -> None:
    """A generated client names its functions after these (issue 22): `createParticipantToken`,
    not the framework's `V1ParticipantTokensCreateParticipantToken`."""
    ids = {
        f"{method.upper()} {path}": op.get("operationId")
        for path, method, op in _operations(document)
    }
    malformed = {
        where: id_ for where, id_ in ids.items() if not re.fullmatch(r"[a-z][A-Za-z]+", id_ or "")
    }
    assert malformed == {}


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [op.get("operationId") for _, _, op in _operations(document)]
    assert len(ids) == len(set(ids))


def test_the_token_routes_have_the_ids_clients_call_them_by(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert paths["/v1/participant-tokens"]["post"]["operationId"] == "createParticipantToken"
    exchange = paths["/v1/participant-tokens/{participantId}/exchange"]["post"]
    assert exchange["operationId"] == "exchangeParticipantToken"
