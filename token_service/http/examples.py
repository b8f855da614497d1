"""Examples of the main shapes, for the OpenAPI document.

Built from the structs the service answers with, so each has the fields and types the
service really sends; tests/http/test_openapi_document.py also checks every example of the
document against its schema.
"""

from __future__ import annotations

from typing import Any

import msgspec

from token_service.domain import Capability
from token_service.http.problem_json import problem_document
from token_service.http.schemas import (
    BanBody,
    BanCreatedBody,
    DisconnectsBody,
    KeyList,
    TokenResponseBody,
)
from token_service.keys.views import KeyView
from token_service.mapping.views import ParticipantRecordBody

STAGE_ARN = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"
KEY_ARN = "arn:aws:ivs:us-east-1:123456789012:public-key/Xy12Zw34Ab56"
PARTICIPANT_ID = "3fGh7kLmNp2qRs5tUv8wXy"
REQUEST_ID = "9f1c2b3a4d5e6f70"


def _value(struct: msgspec.Struct) -> Any:
    return msgspec.to_builtins(struct)


def _example(name: str, summary: str, value: Any) -> dict[str, Any]:
    return {"name": name, "summary": summary, "value": value}


TOKEN = TokenResponseBody(
    # A placeholder of a token's shape, signed by nothing: a real token is an ES384 JWT of
    # about 700 characters.
    token="eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9.eyJ2IjoiMS4wIn0.c2lnbmF0dXJl",  # noqa: S106
    participant_id=PARTICIPANT_ID,
    user_id="sam@example.com",
    stage_arn=STAGE_ARN,
    capabilities=[Capability.PUBLISH, Capability.SUBSCRIBE],
    attributes={"displayName": "Sam"},
    duration_minutes=60,
    expiration_time="2026-12-01T13:00:00Z",
    signer="local",
    key_arn=KEY_ARN,
)

TOKEN_REQUEST = {
    "stageArn": STAGE_ARN,
    "capabilities": ["PUBLISH", "SUBSCRIBE"],
    "durationMinutes": 60,
    "attributes": {"displayName": "Sam"},
}
EXCHANGE_REQUEST = {"capabilities": ["SUBSCRIBE"]}
CAPABILITIES_REQUEST = {"publish": True}
BAN_REQUEST = {"userId": "sam@example.com", "stageArn": STAGE_ARN, "reason": "spam in chat"}

PARTICIPANT = ParticipantRecordBody(
    participant_id=PARTICIPANT_ID,
    app_user_id="sam@example.com",
    token_user_id="sam@example.com",  # noqa: S106 - a user id, not a password
    issuer="https://id.example.com/",
    stage_arn=STAGE_ARN,
    capabilities=["PUBLISH", "SUBSCRIBE"],
    attributes={"displayName": "Sam"},
    issued_at="2026-12-01T12:00:00Z",
    expiration_time="2026-12-01T13:00:00Z",
    signer="local",
    key_arn=KEY_ARN,
    request_id=REQUEST_ID,
    client_ip="203.0.113.9",
    user_agent="Mozilla/5.0",
    disconnected=None,
    events=[],
)

BAN = BanCreatedBody(
    ban=BanBody(
        id="ban_5f2c9a0e7b1d4c36",
        user_id="sam@example.com",
        issuer="https://id.example.com/",
        stage_arn=STAGE_ARN,
        until=None,
        reason="spam in chat",
        created_at="2026-12-01T12:30:00Z",
        created_by="admin:5d41402abc4b",
    ),
    disconnects=DisconnectsBody(
        status="pending",
        total=1,
        pending=1,
        disconnected=0,
        not_connected=0,
        failed=0,
        cancelled=0,
    ),
)

KEYS = KeyList(
    keys=[
        KeyView(
            name="ts-20261201T120000Z-a1b2c3",
            arn=KEY_ARN,
            fingerprint="98:0d:1a:a0:19:96:1e:ea:0a:0a:2c:9a:42:19:2d:04",
            status="active",
            created_at="2026-12-01T12:00:00Z",
            activated_at="2026-12-01T12:00:00Z",
            retired_at=None,
            safe_to_delete_at=None,
        )
    ]
)

RATE_LIMITED = {
    **problem_document(
        429,
        title="Too many requests",
        detail="too many token requests (user limit); retry later",
        code="rate-limited",
    ),
    "requestId": REQUEST_ID,
}

#: Request body examples by operation id: `name`, `summary`, `value`.
REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "createParticipantToken": _example("host", "A host joining a stage", TOKEN_REQUEST),
    "exchangeParticipantToken": _example("viewer", "Back to watching only", EXCHANGE_REQUEST),
    "setParticipantCapabilities": _example("grant", "Let them publish", CAPABILITIES_REQUEST),
    "createBan": _example("stageBan", "Banned from one stage until lifted", BAN_REQUEST),
}

#: Response body examples by operation id and status.
RESPONSE_EXAMPLES: dict[tuple[str, int], dict[str, Any]] = {
    ("createParticipantToken", 201): _example("host", "A token for a host", _value(TOKEN)),
    ("createParticipantToken", 429): _example("userLimit", "Over the user limit", RATE_LIMITED),
    ("exchangeParticipantToken", 200): _example("host", "A fresh token", _value(TOKEN)),
    ("exchangeParticipantToken", 429): _example("userLimit", "Over the user limit", RATE_LIMITED),
    ("getParticipant", 200): _example("onStage", "A participant on stage", _value(PARTICIPANT)),
    ("createBan", 201): _example("stageBan", "A ban, its disconnect pending", _value(BAN)),
    ("listSigningKeys", 200): _example("oneKey", "One active key", _value(KEYS)),
}
