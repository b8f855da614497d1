"""What IVS checks when a connected participant exchanges its token (`POST /_emulator/exchange`).

`stage.exchangeToken(token)` swaps a participant's token without a reconnect. The
new token passes every join rule (ES384, `kid` an imported key, signature, stage and
endpoints, lifetime, `jti`, `version`...), is self-signed (an IVS-issued token
cannot be exchanged in), and keeps what must stay identical: its `jti` names a
participant connected to the `resource` stage now, whose `topic`, `events_url`,
`whip_url` and `version` are that stage's (what the current token had to carry to
join). `capabilities`, `attributes` and `user_id` are then taken from the new token.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ivs_realtime_emulator.join import (
    Joined,
    JoinRejected,
    _attributes,
    _capabilities,
    _split,
    _user_id,
    check_token,
)
from ivs_realtime_emulator.records import ParticipantEvent
from ivs_realtime_emulator.state import CONNECTED, EmulatorState, Participant
from ivs_realtime_emulator.tokens import INTERNAL_KID


def exchange(
    state: EmulatorState, token: str, now: datetime, participant_id: str | None = None
) -> Joined:
    """Check `token` as an exchange and update the connected participant it names."""
    header, _claims = _split(token)
    if header.get("kid") == INTERNAL_KID:
        raise JoinRejected("not_self_signed", "only self-signed tokens can be exchanged", 400)
    stage, claims = check_token(state, token, now)
    jti: str = claims["jti"]
    if participant_id is not None and participant_id != jti:
        raise JoinRejected(
            "participant_mismatch", "jti must stay the participant's id (it is immutable)", 400
        )
    session = stage.active_session()
    participant = session.participants.get(jti) if session is not None else None
    if participant is None or participant.state != CONNECTED:
        raise JoinRejected(
            "participant_not_connected",
            f"participant {jti} is not connected to stage {stage.arn}",
            403,
        )
    previous = _token_view(participant)
    participant.capabilities = _capabilities(claims)
    participant.attributes = _attributes(claims)
    participant.user_id = _user_id(claims)
    participant.token_expiration = datetime.fromtimestamp(claims["exp"], UTC)
    participant.events.append(
        ParticipantEvent(
            "TOKEN_EXCHANGED",
            now,
            jti,
            replica=participant.replication_type == "REPLICA",
            previous_token=previous,
            new_token=_token_view(participant),
        )
    )
    return Joined(
        participant_id=participant.participant_id,
        user_id=participant.user_id,
        stage_arn=stage.arn,
        capabilities=participant.capabilities,
    )


def _token_view(participant: Participant) -> dict[str, Any]:
    """The model's ExchangedParticipantToken of the participant's current token."""
    return {
        "capabilities": list(participant.capabilities),
        "attributes": dict(participant.attributes),
        "userId": participant.user_id,
        "expirationTime": participant.token_expiration,
    }


def parse_exchange_request(body: bytes) -> tuple[str, str | None]:
    """The token and optional participantId of a `{"participantId"?, "token"}` body."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise JoinRejected("invalid_request", "the body must be JSON", 400) from None
    if not isinstance(document, dict) or not isinstance(document.get("token"), str):
        raise JoinRejected(
            "invalid_request", 'the body must be {"participantId"?: "...", "token": "..."}', 400
        )
    participant_id = document.get("participantId")
    if participant_id is not None and not isinstance(participant_id, str):
        raise JoinRejected("invalid_request", "participantId must be a string", 400)
    token: str = document["token"]
    return token, participant_id
