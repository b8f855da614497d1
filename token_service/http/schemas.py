"""Request and response bodies of the HTTP API, as msgspec structs (camelCase on the wire).

Unknown request fields are rejected rather than ignored: a client that misspells
`durationMinutes` must learn it, not silently get the default.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from token_service.domain import STAGE_ARN_RE, Capability
from token_service.keys.views import KeyView
from token_service.mapping.views import ParticipantRecordBody

#: `STAGE_ARN_RE` as an ECMA-262 pattern (no Python named groups), for the OpenAPI document.
STAGE_ARN_PATTERN = re.sub(r"\(\?P<\w+>", "(", STAGE_ARN_RE.pattern)
DURATION = Annotated[int, msgspec.Meta(ge=1, le=20160, description="Token lifetime in minutes")]
STAGE_ARN = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        examples=["arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"],
        # Documented, and checked by `parse_stage_arn` (400 naming the field), not here.
        extra_json_schema={"extra": {"pattern": STAGE_ARN_PATTERN}},
    ),
]
#: At least one capability: an empty list is refused by the policy (400), so documented here.
CAPABILITIES = Annotated[
    list[Capability],
    msgspec.Meta(max_length=2, extra_json_schema={"extra": {"min_items": 1}}),
]
ATTRIBUTE_KEY = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ATTRIBUTE_VALUE = Annotated[str, msgspec.Meta(max_length=1024)]
#: No control character (U+0000-U+001F, U+007F-U+009F): `strict_json` refuses them.
NO_CONTROL_CHARACTERS = r"^[^\u0000-\u001f\u007f-\u009f]*$"
#: Litestar documents neither a dict's key nor its value constraints: stated here.
ATTRIBUTES = Annotated[
    dict[ATTRIBUTE_KEY, ATTRIBUTE_VALUE],
    msgspec.Meta(
        max_length=64,
        extra_json_schema={
            "description": (
                "At most 1023 bytes of UTF-8 in all, keys plus values (server-set ones "
                "included), else 400"
            ),
            "extra": {
                "max_properties": 64,
                "property_names": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 128,
                    "pattern": NO_CONTROL_CHARACTERS,
                },
                "additional_properties": {
                    "type": "string",
                    "maxLength": 1024,
                    "pattern": NO_CONTROL_CHARACTERS,
                },
            },
        },
    ),
]


class TokenRequestBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """Ask for a participant token; only `stageArn` is required."""

    stage_arn: STAGE_ARN
    capabilities: CAPABILITIES | None = None
    duration_minutes: DURATION | None = None
    attributes: ATTRIBUTES = msgspec.field(default_factory=dict)


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
    #: `ok`; `degraded` (200: a shared dependency fails, `states` says which);
    #: `unavailable` (503: this replica cannot serve, `states` says why).
    status: Literal["ok", "degraded", "unavailable"]
    #: Per check: `ok`, or why it fails.
    checks: dict[str, str] = msgspec.field(default_factory=dict)
    #: Per check: `ok`, `degraded` or `failed`.
    states: dict[str, Literal["ok", "degraded", "failed"]] = msgspec.field(default_factory=dict)


class DisconnectBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] = "disconnected by operator"


class DisconnectResultBody(msgspec.Struct, kw_only=True, rename="camel"):
    participant: ParticipantRecordBody
    #: `disconnected`, or `not-connected`: then the token can still join until it expires.
    ivs_result: str


#: Whose user id an operator means (see `mapping.users`): an issuer, null or empty for
#: tokens without one, `*` for every issuer.
ISSUER = (
    Annotated[
        str,
        msgspec.Meta(
            max_length=1024,
            description=(
                "The `iss` of the user's tokens; null or empty: tokens without one; `*`: the user "
                "id from every issuer. Omitted: every issuer, unless a shared secret and OIDC are "
                "both accepted (then required: 400)"
            ),
        ),
    ]
    | None
)


class BanRequestBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, rename="camel"):
    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    issuer: ISSUER | msgspec.UnsetType = msgspec.UNSET
    stage_arn: STAGE_ARN | None = None
    #: ISO 8601 time the ban ends; omitted: until lifted.
    until: (
        Annotated[str, msgspec.Meta(extra_json_schema={"extra": {"format": "date-time"}})] | None
    ) = None
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class BanBody(msgspec.Struct, kw_only=True, rename="camel"):
    id: str
    user_id: str
    #: The user's issuer; null: tokens without one; `*`: the user id from every issuer.
    issuer: str | None
    stage_arn: str | None
    until: str | None
    reason: str
    created_at: str
    created_by: str


class DisconnectsBody(msgspec.Struct, kw_only=True, rename="camel"):
    """A ban's disconnects of its user's live participants, done in the background."""

    #: `pending` while any is; then `done`, or `partial` when any failed.
    status: Literal["pending", "done", "partial"]
    #: Live participants found when the ban was made (unexpired, not disconnected).
    total: int
    pending: int
    disconnected: int
    #: IVS had no such connected participant: its token can still join until it expires.
    not_connected: int
    #: IVS refused the call for good, or kept failing for a day.
    failed: int
    #: The ban was lifted or ended before the participant's turn.
    cancelled: int


class BanCreatedBody(msgspec.Struct, kw_only=True, rename="camel"):
    ban: BanBody
    disconnects: DisconnectsBody


class BanStatusBody(BanBody, kw_only=True, rename="camel"):
    #: null for a ban made before disconnects were tallied.
    disconnects: DisconnectsBody | None


class BanList(msgspec.Struct, kw_only=True):
    bans: list[BanStatusBody]


class BanParticipantBody(msgspec.Struct, kw_only=True, rename="camel"):
    participant_id: str
    #: pending, disconnected, not-connected, failed or cancelled.
    result: str


class BanDetailBody(msgspec.Struct, kw_only=True, rename="camel"):
    ban: BanBody
    disconnects: DisconnectsBody | None
    participants: list[BanParticipantBody]


class EventAccepted(msgspec.Struct, kw_only=True):
    #: attached, duplicate, unknown-participant, or ignored (not an IVS stage update).
    result: str
