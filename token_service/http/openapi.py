"""The OpenAPI document's own parts: documented error responses (every problem a route
returns), path parameter names, and the headers each response carries."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Litestar

# Litestar's private schema plugin for msgspec structs, checked against litestar 2.25.0:
# the public `OpenAPISchemaPlugin` protocol would mean generating the whole struct schema
# ourselves, and no public option marks a struct closed. Only this module imports it;
# tests/packaging/test_library_internals.py fails when it moves or changes its signature.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import OpenAPI, OpenAPIHeader, OpenAPIType, Schema
from litestar.params import PathParameter

from token_service.http.examples import REQUEST_EXAMPLES, RESPONSE_EXAMPLES
from token_service.http.schemas import Problem

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

# Path parameters are named as the JSON bodies name the same thing (`participantId`, not the
# handler argument's `participant_id`): a generated client's arguments then match the fields
# it reads back. The URLs are the same either way.
ParticipantIdPath = Annotated[
    str, PathParameter(name="participantId", description="`participantId` of the token")
]
BanIdPath = Annotated[str, PathParameter(name="banId", description="`id` of the ban")]

_DESCRIPTIONS = {
    400: "Malformed JSON, a field of the wrong type or out of range, unknown field",
    401: "Missing or invalid credentials",
    403: "The policy refuses the stage, a capability or the duration; user banned",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body larger than 16 KiB",
    415: "The body is not declared as JSON (Content-Type: application/json, UTF-8)",
    429: "Rate limited: send it again after `Retry-After` seconds",
    502: "IVS failed",
    503: "IVS, Redis or the signing key unavailable",
    504: "IVS did not answer in time",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type="application/problem+json",
            generate_examples=False,
        )
        for status in statuses
    }


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """msgspec request bodies that refuse unknown fields say so: `additionalProperties: false`.

    Litestar documents every struct as open, so a client (or a fuzzer) reading the document
    would expect `{"stageArn": ..., "extra": 1}` to be accepted; the service answers 400.
    """

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        config = getattr(field_definition.type_, "__struct_config__", None)
        if config is not None and config.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


# Response headers. Litestar documents a handler's `response_headers` on its success
# response only, inline and without a schema (a header object needs one), and has no place
# for headers on a `ResponseSpec`; so the document is given them once built, from the rules
# below, each a `$ref` to one definition in `components/headers`. What the service really
# sends is held to them by tests/http/test_openapi_document.py.

_SECONDS = Schema(type=OpenAPIType.INTEGER, minimum=1)
#: One item of an IETF RateLimit field per limit the caller may see, e.g. `"user";r=9;t=6`.
_LIMIT_ITEM = r'"[a-z]+";{0}=[0-9]+;{1}=[0-9]+'


def _limit_list(first: str, second: str) -> str:
    item = _LIMIT_ITEM.format(first, second)
    return f"^{item}(, {item})*$"


#: `components/headers`, by name.
RESPONSE_HEADERS: dict[str, OpenAPIHeader] = {
    "RequestId": OpenAPIHeader(
        description=(
            "The request's id, also `requestId` of a problem body and in every log line of "
            "the request: the caller's own `X-Request-Id` when it sent one (8 to 64 of "
            "`A-Za-z0-9._-`), else a new one"
        ),
        required=True,
        schema=Schema(type=OpenAPIType.STRING, pattern="^[A-Za-z0-9._-]{8,64}$"),
    ),
    "RetryAfter": OpenAPIHeader(
        description="Seconds to wait before sending the request again",
        required=True,
        schema=_SECONDS,
    ),
    "RetryAfterWhenKnown": OpenAPIHeader(
        description=(
            "Seconds to wait before sending the request again, when the service knows "
            "(a dependency's outage, a budget's next slot)"
        ),
        required=False,
        schema=_SECONDS,
    ),
    "RateLimit": OpenAPIHeader(
        description=(
            "The caller's own limits now (IETF draft httpapi-ratelimit-headers): per limit, "
            "`r` requests left and `t` seconds until it is whole again. The stage's limit "
            "is never shown, so a caller with none to see gets no field"
        ),
        required=False,
        schema=Schema(type=OpenAPIType.STRING, pattern=_limit_list("r", "t")),
        example='"user";r=9;t=6, "ip";r=59;t=1',
    ),
    "RateLimitPolicy": OpenAPIHeader(
        description=(
            "The caller's own limits (IETF draft httpapi-ratelimit-headers): per limit, "
            "`q` requests per window of `w` seconds; sent with `RateLimit`"
        ),
        required=False,
        schema=Schema(type=OpenAPIType.STRING, pattern=_limit_list("q", "w")),
        example='"user";q=10;w=60, "ip";q=60;w=60',
    ),
    "WwwAuthenticate": OpenAPIHeader(
        description=(
            'RFC 6750: a bearer token is needed (`error="invalid_token"`: it was refused)'
        ),
        required=True,
        schema=Schema(type=OpenAPIType.STRING, pattern="^Bearer( |$)"),
        example='Bearer error="invalid_token"',
    ),
    "NoStore": OpenAPIHeader(
        description="Never cached: a credential, or a state that is only true now",
        required=True,
        schema=Schema(type=OpenAPIType.STRING, const="no-store"),
    ),
    "NoCache": OpenAPIHeader(
        description="`Cache-Control: no-store` for HTTP/1.0 caches",
        required=True,
        schema=Schema(type=OpenAPIType.STRING, const="no-cache"),
    ),
}

#: Answers carrying the caller's rate limits, success and 429 (`token_headers`, `settle`).
RATE_LIMITED_OPERATIONS = frozenset({"createParticipantToken", "exchangeParticipantToken"})
#: Successes carrying a token, never cached (`token_headers`).
TOKEN_OPERATIONS = RATE_LIMITED_OPERATIONS | {"setParticipantCapabilities"}
#: Operations whose every answer is `Cache-Control: no-store`, the 503 of /readyz too.
UNCACHED_OPERATIONS = frozenset({"getReadiness", "getMetrics"})


def headers_of(operation_id: str, status: int) -> dict[str, str]:
    """The headers an operation's response of `status` carries: header name to the name of
    its definition in `components/headers`."""
    headers = {"X-Request-Id": "RequestId"}
    success = 200 <= status < 300
    if status == 401:
        headers["WWW-Authenticate"] = "WwwAuthenticate"
    if status == 429:
        headers["Retry-After"] = "RetryAfter"
    if status == 503 and operation_id not in UNCACHED_OPERATIONS:
        # Not /readyz's: its 503 is a verdict on this replica, retried by the prober anyway.
        headers["Retry-After"] = "RetryAfterWhenKnown"
    if operation_id in RATE_LIMITED_OPERATIONS and (success or status == 429):
        headers["RateLimit"] = "RateLimit"
        headers["RateLimit-Policy"] = "RateLimitPolicy"
    if (success and operation_id in TOKEN_OPERATIONS) or operation_id in UNCACHED_OPERATIONS:
        headers["Cache-Control"] = "NoStore"
    if success and operation_id in TOKEN_OPERATIONS:
        headers["Pragma"] = "NoCache"
    return headers


def add_examples(document: dict[str, Any]) -> None:
    """Give the bodies of `REQUEST_EXAMPLES` and `RESPONSE_EXAMPLES` their example."""
    for methods in document.get("paths", {}).values():
        for operation in methods.values():
            operation_id = operation.get("operationId", "")
            request = REQUEST_EXAMPLES.get(operation_id)
            if request is not None:
                _set_example(operation.get("requestBody", {}), request)
            for status, response in operation.get("responses", {}).items():
                example = RESPONSE_EXAMPLES.get((operation_id, int(status)))
                if example is not None:
                    _set_example(response, example)


def _set_example(holder: dict[str, Any], example: dict[str, Any]) -> None:
    for media in holder.get("content", {}).values():
        media["examples"] = {example["name"]: {k: v for k, v in example.items() if k != "name"}}


def declare_headers(document: dict[str, Any]) -> None:
    """Give every response of `document` (an OpenAPI document as JSON) its `headers`."""
    for methods in document.get("paths", {}).values():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                declared = headers_of(operation["operationId"], int(status))
                response["headers"] = {
                    **response.get("headers", {}),
                    **{
                        name: {"$ref": f"#/components/headers/{definition}"}
                        for name, definition in declared.items()
                    },
                }


def documented_paths(handlers: Sequence[HTTPRouteHandler], config: OpenAPIConfig) -> dict[str, Any]:
    """The document Litestar writes for `handlers` alone (their `paths` and the
    `components/schemas` they use), as it writes them for a route it serves: built by an
    app of their own, with this service's schema plugin, never served."""
    app = Litestar(
        route_handlers=list(handlers),
        plugins=[StrictStructSchemaPlugin()],
        openapi_config=OpenAPIConfig(
            title=config.title, version=config.version, create_examples=config.create_examples
        ),
        debug=False,
        logging_config=None,
    )
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return document


def merge_documented(document: dict[str, Any], extra: dict[str, Any], first: bool) -> None:
    """Add `extra`'s paths (first, or last) and component schemas to `document`, schemas
    sorted by name as Litestar sorts them."""
    paths = extra.get("paths", {})
    document["paths"] = (
        {**paths, **document.get("paths", {})} if first else {**document.get("paths", {}), **paths}
    )
    schemas = {
        **document.get("components", {}).get("schemas", {}),
        **extra.get("components", {}).get("schemas", {}),
    }
    document.setdefault("components", {})["schemas"] = dict(sorted(schemas.items()))


class _CompletedDocument(OpenAPI):
    #: Served by ASGI handlers, which Litestar leaves out of the document: their operations
    #: as these documentation-only handlers declare them, and the config to build them by.
    documented: tuple[HTTPRouteHandler, ...] = ()
    config: OpenAPIConfig | None = None

    def to_schema(self) -> dict[str, Any]:
        document = super().to_schema()
        if self.documented and self.config is not None:
            # The token route, registered first: its path first, where it always was.
            merge_documented(document, documented_paths(self.documented, self.config), True)
        declare_headers(document)
        add_examples(document)
        return document


@dataclasses.dataclass
class DocumentedOpenAPIConfig(OpenAPIConfig):
    """Litestar's OpenAPI configuration, whose document declares each response's headers
    and has examples of the main bodies (Litestar drops every null of an example it writes,
    and puts a request body's examples in its schema: both are added here instead).

    Litestar builds the document from `to_openapi_schema()` and fills its paths in; both the
    served `/schema/openapi.json` and `app.openapi_schema.to_schema()` then convert it with
    `to_schema()`, where they are added: once, when the document is first asked for.
    """

    #: Route handlers documented but not served (see `_CompletedDocument.documented`).
    documented: tuple[HTTPRouteHandler, ...] = ()

    def to_openapi_schema(self) -> OpenAPI:
        built = super().to_openapi_schema()
        document = _CompletedDocument(
            **{field.name: getattr(built, field.name) for field in dataclasses.fields(built)}
        )
        document.documented = self.documented
        document.config = self
        return document
