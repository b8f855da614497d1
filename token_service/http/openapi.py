"""Documented error responses, so the OpenAPI document lists every problem a route returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

# Litestar's private schema plugin for msgspec structs, checked against litestar 2.25.0:
# the public `OpenAPISchemaPlugin` protocol would mean generating the whole struct schema
# ourselves, and no public option marks a struct closed. Only this module imports it;
# tests/packaging/test_library_internals.py fails when it moves or changes its signature.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi import ResponseSpec
from litestar.params import PathParameter

from token_service.http.schemas import Problem

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
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
    401: "Missing or invalid credentials (WWW-Authenticate: Bearer)",
    403: "The policy refuses the stage, a capability or the duration; user banned",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body larger than 16 KiB",
    415: "The body is not declared as JSON (Content-Type: application/json, UTF-8)",
    429: "Rate limited (Retry-After, RateLimit-* headers)",
    502: "IVS failed",
    503: "IVS, Redis or the signing key unavailable (Retry-After)",
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
