"""The OpenAPI document says what the service really does (found by the schemathesis run,
tests/http/test_openapi_fuzz.py): error bodies, media types, closed request bodies, the
stage ARN rule, and OPTIONS answers."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from tests.http.conftest import ADMIN_TOKEN, SHARED_SECRET, MintUserToken, bearer
from token_service.bootstrap.app import create_app
from token_service.config import load_settings
from token_service.errors import InvalidRequest
from token_service.ivs.stages import parse_stage_arn

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    """The app as built (nothing started)."""
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
    return create_app(settings)


@pytest.fixture(scope="module")
def document(app: Litestar) -> dict[str, Any]:
    """The document the app serves at /schema/openapi.json."""
    schema: dict[str, Any] = app.openapi_schema.to_schema()
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


LOWER_CAMEL = re.compile(r"[a-z][A-Za-z0-9]*")


def test_every_path_parameter_is_named_in_lower_camel_case(document: dict[str, Any]) -> None:
    """As the bodies name the same things (`participantId`), so a generated client does too."""
    in_templates = {name for path in document["paths"] for name in re.findall(r"{([^}]*)}", path)}
    declared = {
        p["name"]
        for _, _, operation in _operations(document)
        for p in operation.get("parameters", [])
        if p["in"] == "path"
    }
    assert in_templates == declared
    assert {name for name in declared if not LOWER_CAMEL.fullmatch(name)} == set()


def test_no_documented_route_is_a_catch_all_path(app: Litestar) -> None:
    """A `{name:path}` parameter takes the rest of the URL, slashes included: one opaque
    string to a client generator, not the resource's parts."""
    catch_alls = [
        path
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.include_in_schema
        for path in handler.paths
        if ":path}" in path
    ]
    assert catch_alls == []


def _responses(document: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (operation["operationId"], int(status), response)
        for _, _, operation in _operations(document)
        for status, response in operation["responses"].items()
    ]


def _declared(response: dict[str, Any]) -> set[str]:
    return {name.lower() for name in response.get("headers", {})}


def test_every_response_declares_x_request_id(document: dict[str, Any]) -> None:
    missing = [
        (op, status) for op, status, r in _responses(document) if "x-request-id" not in _declared(r)
    ]
    assert missing == []


def test_every_429_and_503_declares_retry_after(document: dict[str, Any]) -> None:
    """/readyz's 503 excepted: its body is the health verdict, sent without a Retry-After."""
    missing = [
        (op, status)
        for op, status, r in _responses(document)
        if status in {429, 503} and op != "getReadiness" and "retry-after" not in _declared(r)
    ]
    assert missing == []


def test_every_401_declares_www_authenticate(document: dict[str, Any]) -> None:
    missing = [
        op
        for op, status, r in _responses(document)
        if status == 401 and "www-authenticate" not in _declared(r)
    ]
    assert missing == []


@pytest.mark.parametrize("operation_id", ["createParticipantToken", "exchangeParticipantToken"])
def test_rate_limited_operations_declare_their_limits_on_success_and_429(
    document: dict[str, Any], operation_id: str
) -> None:
    statuses = {
        status
        for op, status, r in _responses(document)
        if op == operation_id and {"ratelimit", "ratelimit-policy"} <= _declared(r)
    }
    assert statuses == {status for status in statuses if status < 300} | {429}
    assert any(status < 300 for status in statuses)


def test_every_declared_header_is_defined_once_in_components(document: dict[str, Any]) -> None:
    definitions = document["components"]["headers"]
    refs = {
        header["$ref"]
        for _, _, r in _responses(document)
        for header in r.get("headers", {}).values()
    }
    assert refs == {f"#/components/headers/{name}" for name in definitions}
    assert all("schema" in definition for definition in definitions.values())


def _examples(document: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """(where, example value, schema) for every example of a body, parameter or header."""
    found: list[tuple[str, Any, dict[str, Any]]] = []

    def of(where: str, holder: dict[str, Any]) -> None:
        for name, example in (holder.get("examples") or {}).items():
            found.append((f"{where} {name}", example["value"], holder["schema"]))
        if "example" in holder:
            found.append((where, holder["example"], holder["schema"]))

    for method, path, operation in _operations(document):
        where = f"{method} {path}"
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            of(f"{where} request {media_type}", media)
        for parameter in operation.get("parameters", []):
            of(f"{where} parameter {parameter['name']}", parameter)
        for status, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                of(f"{where} {status} {media_type}", media)
    for name, header in document["components"]["headers"].items():
        of(f"header {name}", header)
    return found


def test_every_example_is_valid_against_its_schema(document: dict[str, Any]) -> None:
    invalid = {}
    for where, value, schema in _examples(document):
        # The schema's `$ref`s point into the document's components.
        validator = Draft202012Validator(
            {**schema, "components": document["components"]},
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = [error.message for error in validator.iter_errors(value)]
        if errors:
            invalid[where] = errors
    assert invalid == {}


@pytest.mark.parametrize(
    ("path", "method", "part"),
    [
        ("/v1/participant-tokens", "post", "request"),
        ("/v1/participant-tokens", "post", "201"),
        ("/v1/participant-tokens", "post", "429"),
        ("/v1/participant-tokens/{participantId}/exchange", "post", "request"),
        ("/v1/participant-tokens/{participantId}/exchange", "post", "200"),
        ("/admin/participants/{participantId}", "get", "200"),
        ("/admin/bans", "post", "request"),
        ("/admin/bans", "post", "201"),
        ("/admin/keys", "get", "200"),
    ],
)
def test_the_main_shapes_have_an_example(
    document: dict[str, Any], path: str, method: str, part: str
) -> None:
    operation = document["paths"][path][method]
    holder = operation["requestBody"] if part == "request" else operation["responses"][part]
    (media,) = holder["content"].values()
    assert media.get("examples")


# ------------------------------------------------------------------ the headers really sent

#: The response headers the document speaks for (the framework's own, such as
#: Content-Type, are described by the response's content).
OF_INTEREST = {
    "x-request-id",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "www-authenticate",
    "cache-control",
    "pragma",
    "deprecation",
    "link",
    "location",
}


def _definition(document: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    name = header["$ref"].removeprefix("#/components/headers/")
    definition: dict[str, Any] = document["components"]["headers"][name]
    return definition


def assert_headers_as_documented(
    document: dict[str, Any], operation_id: str, response: httpx.Response
) -> None:
    """Every header of interest the response carries is declared for its status, and every
    header declared required is there."""
    (documented,) = [
        r
        for op, status, r in _responses(document)
        if op == operation_id and status == response.status_code
    ]
    declared = {name.lower(): _definition(document, h) for name, h in documented["headers"].items()}
    sent = {name.lower() for name in response.headers if name.lower() in OF_INTEREST}
    assert sent - set(declared) == set(), (operation_id, response.status_code)
    required = {name for name, definition in declared.items() if definition["required"]}
    assert required - sent == set(), (operation_id, response.status_code)


@pytest.fixture
async def served(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    """The document as /schema/openapi.json serves it."""
    served: dict[str, Any] = (await client.get("/schema/openapi.json")).json()
    return served


async def test_a_token_answer_sends_the_headers_its_201_declares(
    client: AsyncTestClient[Litestar],
    served: dict[str, Any],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    response = await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(user_token())
    )
    assert response.status_code == 201
    assert {"ratelimit", "ratelimit-policy"} <= set(response.headers)
    assert_headers_as_documented(served, "createParticipantToken", response)


async def test_an_exchange_sends_the_headers_its_200_declares(
    client: AsyncTestClient[Litestar],
    served: dict[str, Any],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    token = user_token()
    issued = await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer(token)
    )
    participant_id = issued.json()["participantId"]
    response = await client.post(
        f"/v1/participant-tokens/{participant_id}/exchange", json={}, headers=bearer(token)
    )
    assert response.status_code == 200
    assert_headers_as_documented(served, "exchangeParticipantToken", response)


async def test_a_refused_app_token_sends_the_headers_its_401_declares(
    client: AsyncTestClient[Litestar], served: dict[str, Any], stage_arn: str
) -> None:
    response = await client.post(
        "/v1/participant-tokens", json={"stageArn": stage_arn}, headers=bearer("not-a-jwt")
    )
    assert response.status_code == 401
    assert_headers_as_documented(served, "createParticipantToken", response)


@pytest.mark.usefixtures("signing_key")
async def test_a_rate_limited_token_request_sends_the_headers_its_429_declares(
    make_app: Callable[..., Litestar],
    env: dict[str, str],
    user_token: MintUserToken,
    stage_arn: str,
) -> None:
    app = make_app(settings=load_settings({**env, "TOKEN_SERVICE_RATE_LIMIT_USER": "1/minute"}))
    async with AsyncTestClient(app=app) as client:
        served = (await client.get("/schema/openapi.json")).json()
        body, headers = {"stageArn": stage_arn}, bearer(user_token())
        assert (await client.post("/v1/participant-tokens", json=body, headers=headers)).is_success
        response = await client.post("/v1/participant-tokens", json=body, headers=headers)
    assert response.status_code == 429
    assert_headers_as_documented(served, "createParticipantToken", response)


async def test_a_refused_admin_token_sends_the_headers_its_401_declares(
    client: AsyncTestClient[Litestar], served: dict[str, Any]
) -> None:
    response = await client.get("/admin/keys", headers=bearer("wrong-admin-token"))
    assert response.status_code == 401
    assert_headers_as_documented(served, "listSigningKeys", response)


async def test_an_admin_lookup_sends_the_headers_its_200_declares(
    client: AsyncTestClient[Litestar], served: dict[str, Any], stage_arn: str
) -> None:
    response = await client.get(
        "/admin/participants", params={"stageArn": stage_arn}, headers=bearer(ADMIN_TOKEN)
    )
    assert response.status_code == 200
    assert_headers_as_documented(served, "listStageParticipants", response)


async def test_readiness_sends_the_headers_its_answer_declares(
    client: AsyncTestClient[Litestar], served: dict[str, Any]
) -> None:
    response = await client.get("/readyz")
    assert_headers_as_documented(served, "getReadiness", response)
