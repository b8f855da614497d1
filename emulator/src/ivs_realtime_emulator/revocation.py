"""RevokeConnectionToken: a token ID that may never connect again.

The API reference: "Revokes the specified connection token so that it can no
longer connect to a stage. This operation disconnects any participant currently
connected with the revoked token." The emulator's tokens are identified by their
`jti`, the participant ID, so `tokenId` is that ID: the emulator remembers it in
the caller's region, disconnects every participant of that region's stages
connected with it (LEFT), and `POST /_emulator/join` refuses any token with that
`jti` for a stage of that region with the reason `token_revoked` (403). The
model lists no ResourceNotFoundException: an unknown token ID is remembered too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ivs_realtime_emulator import departures

if TYPE_CHECKING:
    from ivs_realtime_emulator.operations import OperationContext

Params = Mapping[str, Any]


def revoke_connection_token(ctx: OperationContext, params: Params) -> dict[str, Any]:
    token_id: str = params["tokenId"]
    ctx.region.revoked_token_ids.add(token_id)
    for stage in list(ctx.region.stages.values()):
        session = stage.active_session()
        participant = session.participants.get(token_id) if session else None
        if participant is not None and stage.disconnect(token_id, ctx.now, ban=False):
            departures.participants_left(ctx.region, stage, [participant], ctx.now)
    return {}


HANDLERS: dict[str, Callable[[OperationContext, Params], dict[str, Any]]] = {
    "RevokeConnectionToken": revoke_connection_token,
}
MUTATING = frozenset({"RevokeConnectionToken"})
