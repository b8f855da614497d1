"""Request and response bodies of the HTTP API, as msgspec structs (camelCase on the wire).

Unknown request fields are rejected rather than ignored: a client that misspells
`durationMinutes` must learn it, not silently get the default.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from token_service.domain import Capability

DURATION = Annotated[int, msgspec.Meta(ge=1, le=20160, description="Token lifetime in minutes")]
STAGE_ARN = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        examples=["arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"],
    ),
]
ATTRIBUTE_KEY = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ATTRIBUTE_VALUE = Annotated[str, msgspec.Meta(max_length=1024)]


class TokenRequestBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """Ask for a participant token; only `stageArn` is required."""

    stage_arn: STAGE_ARN
    capabilities: Annotated[list[Capability], msgspec.Meta(max_length=2)] | None = None
    duration_minutes: DURATION | None = None
    attributes: Annotated[dict[ATTRIBUTE_KEY, ATTRIBUTE_VALUE], msgspec.Meta(max_length=64)] = (
        msgspec.field(default_factory=dict)
    )


class TokenResponseBody(msgspec.Struct, rename="camel", kw_only=True):
    token: str
    participant_id: str
    user_id: str
    stage_arn: str
    capabilities: list[Capability]
    attributes: dict[str, str]
    duration_minutes: int
    expiration_time: str
    signer: Literal["local", "ivs"]
    key_arn: str | None


class KeyView(msgspec.Struct, rename="camel", kw_only=True):
    name: str
    arn: str
    fingerprint: str
    status: Literal["active", "next", "retiring"]
    created_at: str | None
    activated_at: str | None
    retired_at: str | None
    safe_to_delete_at: str | None


class KeyList(msgspec.Struct, kw_only=True):
    keys: list[KeyView]


class KeyDeleted(msgspec.Struct, kw_only=True):
    deleted: KeyView
    forced: bool


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True, rename="camel"):
    """RFC 9457 problem details, the body of every error response."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None
    rule: str | None = None
    request_id: str | None = None


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = msgspec.field(default_factory=dict)
