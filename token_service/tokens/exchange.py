"""Token exchange: a fresh token for a participant already on a stage, without a rejoin.

IVS's `stage.exchangeToken(token)` accepts a self-signed token whose `topic`,
`resource`, `jti`, `whip_url`, `events_url` and `version` equal the current token's;
`capabilities`, `attributes`, `user_id`, `iat` and `exp` may change (see
docs/ivs-facts.md, "Token exchange"). The participant id is the `jti`, so the new token is
built from the participant's mapping record and the stage's endpoints, and signed
with the key that is active now (IVS checks the new token's `kid`).

Two ways in:

- `exchange`: the participant's own app user (same verified user id and issuer as
  in the record) asks; capabilities and attributes are re-decided by the policy as
  of now, then an admin's PUBLISH grant or revoke (if any) is applied on top.
- `set_publish`: an admin grants or revokes PUBLISH; stored as the participant's
  override (so the participant's next exchange gets it) and a ready token returned.

Refusals: unknown participant or another user's (404, the same answer, so existence
does not leak), a participant issued in ivs mode (409: IVS tokens cannot be
exchanged for self-signed ones), a disconnected participant or a banned user (403).
The user's exchange is rate-limited by the same gate and limits as issuance (one
Redis round trip for limits and bans; the record update is a second one).

Changes of one participant are compare-and-set: each reads the participant (with its
version), decides, and writes the record, the history entry and the admin's override in
one store step that only succeeds if nobody changed the participant meanwhile; the token
is signed only after that. A change that lost the race decides again on what won, up to
`CHANGE_ATTEMPTS` times, then answers 409 (`ChangedConcurrently`). So the stored override,
the stored capabilities and the last history entry always agree, and every token handed
out is one of the history's entries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from token_service.admission.gate import Gate
from token_service.admission.ratelimit import Decision, RateLimits
from token_service.domain import Capability, Grant, IssuedToken, Signer, TokenRequest
from token_service.errors import (
    ChangedConcurrently,
    Conflict,
    NotFound,
    PermissionDenied,
)
from token_service.keys.usage import KeyUsage
from token_service.mapping.records import (
    CapabilityChange,
    CapabilityOverride,
    MappingRecord,
    ParticipantView,
)
from token_service.mapping.store import ChangeResult, MappingStore
from token_service.observability.tracing import span
from token_service.tokens.desk import (
    USER_AGENT_MAX,
    Caller,
    Decider,
    IssuanceHooks,
    limits_for,
    settle,
)
from token_service.tokens.issuers import StageResolver, active_key, prepare_token

log = logging.getLogger("token_service.issued")

#: Tries at one change before a 409. Each lost try means another change of the same
#: participant was written meanwhile, so five lets five changes run at once, far more
#: than an admin and the participant's own (rate-limited) app make.
CHANGE_ATTEMPTS = 5


class ActiveKeySource(Protocol):
    def active(self) -> Any: ...


@dataclass(frozen=True)
class ExchangeRequest:
    """The issue request minus the stage: the stage is the participant's own."""

    capabilities: frozenset[Capability] | None = None
    duration_minutes: int | None = None
    attributes: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ExchangeOutcome:
    token: IssuedToken
    record: MappingRecord
    decision: Decision | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def apply_override(
    capabilities: frozenset[Capability], override: CapabilityOverride | None
) -> frozenset[Capability]:
    if override is None:
        return capabilities
    if override.publish:
        return capabilities | {Capability.PUBLISH}
    return capabilities - {Capability.PUBLISH}


class Exchanger:
    def __init__(
        self,
        *,
        policy: Decider,
        gate: Gate,
        rate_limits: RateLimits,
        mapping: MappingStore,
        keys: ActiveKeySource,
        stages: StageResolver,
        hooks: IssuanceHooks | None = None,
        clock: Callable[[], datetime] = _utcnow,
        timer: Callable[[], float] = time.perf_counter,
        on_exchanged: Callable[[str, bool], None] | None = None,
        usage: KeyUsage | None = None,
    ) -> None:
        self._policy = policy
        self._gate = gate
        self._rate_limits = rate_limits
        self._mapping = mapping
        self._keys = keys
        self._stages = stages
        self._hooks = hooks
        self._clock = clock
        self._timer = timer
        #: Called with who asked ("participant" or "admin") and whether PUBLISH is granted.
        self._on_exchanged = on_exchanged
        #: Every token signed here is counted under its key, as a first issue is: a revoke
        #: reports it, and the key is not safe to delete while it is unexpired.
        self._usage = usage

    async def _exchangeable(self, participant_id: str, owner: Caller | None) -> ParticipantView:
        view = await self._mapping.get(participant_id)
        record = view.record if view is not None else None
        if (
            view is None
            or record is None
            or (owner is not None and not record.belongs_to(owner.user.issuer, owner.user.user_id))
        ):
            # The same answer for "unknown" and "someone else's": existence does not leak.
            raise NotFound("no such participant for this user")
        if record.signer != Signer.LOCAL.value:
            raise Conflict(
                "this participant's token was issued by IVS (ivs mode); only self-signed "
                "tokens can be exchanged: request a new token and rejoin"
            )
        if view.disconnect is not None:
            raise PermissionDenied("this participant was disconnected", rule="disconnected")
        return view

    async def exchange(
        self, caller: Caller, participant_id: str, request: ExchangeRequest
    ) -> ExchangeOutcome:
        """The participant's own app asks: a refresh, or a promotion its roles now allow."""
        started = self._timer()
        admitted: Decision | None = None
        for attempt in range(CHANGE_ATTEMPTS):
            view = await self._exchangeable(participant_id, caller)
            with span("policy"):
                grant = self._regrant(caller, view, request)
            if attempt == 0:
                # Once per request: a retry after a lost race is not the caller's doing.
                limits = limits_for(self._policy, self._rate_limits, caller, view.record.stage_arn)
                with span("admission"):
                    admission = await self._gate.admit(
                        limits,
                        issuer=caller.user.issuer,
                        user_id=caller.user.user_id,
                        stage_arn=view.record.stage_arn,
                        record=None,
                    )
                admitted = settle(admission, self._hooks)
            signed = await self._sign(view, grant, by="exchange", caller=caller, override=None)
            if signed is not None:
                break
        else:
            raise _changed_concurrently()
        token, updated = signed
        if self._hooks is not None:
            self._hooks.issued(Signer.LOCAL.value, self._timer() - started)
            self._hooks.recorded(False)
        if self._on_exchanged is not None:
            self._on_exchanged("participant", Capability.PUBLISH in token.capabilities)
        return ExchangeOutcome(token=token, record=updated, decision=admitted)

    def _regrant(self, caller: Caller, view: ParticipantView, request: ExchangeRequest) -> Grant:
        """What the policy grants now, with the admin's PUBLISH grant or revoke on top."""
        override = view.override
        asked = request.capabilities
        if asked is not None and override is not None and override.publish:
            # PUBLISH granted by an admin: the policy decides the rest.
            asked = asked - {Capability.PUBLISH}
        # As for a new token: the client's attributes (none unless sent), then the policy's.
        attributes = request.attributes or {}
        grant = self._policy.decide(
            caller.user,
            TokenRequest(
                stage_arn=view.record.stage_arn,
                capabilities=asked,
                duration_minutes=request.duration_minutes,
                attributes=dict(attributes),
            ),
        )
        return Grant(
            stage_arn=grant.stage_arn,
            token_user_id=grant.token_user_id,
            capabilities=apply_override(grant.capabilities, override),
            duration_minutes=grant.duration_minutes,
            attributes=grant.attributes,
        )

    async def set_publish(self, participant_id: str, *, publish: bool, by: str) -> ExchangeOutcome:
        """An admin grants or revokes PUBLISH: kept for the next exchange, and a token now."""
        for attempt in range(CHANGE_ATTEMPTS):
            view = await self._exchangeable(participant_id, None)
            record = view.record
            now = time.time()
            if attempt == 0:
                # The user and stage a ban names do not change between tries.
                for ban in await self._mapping.bans():
                    if ban.refuses(record.issuer, record.app_user_id, record.stage_arn, now):
                        raise PermissionDenied(
                            "this user is banned from this stage", rule=f"ban {ban.id}"
                        )
            override = CapabilityOverride(publish=publish, at=int(now), by=by)
            # On the capabilities this try read: after a lost race, on those of the change
            # that won, never on the state it replaced.
            current = frozenset(Capability(c) for c in record.capabilities)
            grant = Grant(
                stage_arn=record.stage_arn,
                token_user_id=record.token_user_id,
                capabilities=apply_override(current, override),
                duration_minutes=max(1, (record.expires_at - record.issued_at) // 60),
                attributes=dict(record.attributes),
            )
            signed = await self._sign(view, grant, by=by, caller=None, override=override)
            if signed is not None:
                break
        else:
            raise _changed_concurrently()
        token, updated = signed
        if self._on_exchanged is not None:
            self._on_exchanged("admin", publish)
        return ExchangeOutcome(token=token, record=updated, decision=None)

    async def _sign(
        self,
        view: ParticipantView,
        grant: Grant,
        *,
        by: str,
        caller: Caller | None,
        override: CapabilityOverride | None,
    ) -> tuple[IssuedToken, MappingRecord] | None:
        """Write the change over `view` (compare-and-set), then sign its token; None when
        another change was written since `view` was read (nothing written, nothing signed)."""
        record = view.record
        stage = await self._stages.resolve(record.stage_arn)
        key = active_key(self._keys)
        prepared = prepare_token(
            stage=stage,
            grant=grant,
            key=key,
            participant_id=record.participant_id,
            now=self._clock(),
        )
        now, expires = prepared.facts.issued_at, prepared.facts.expires_at
        capabilities = sorted(c.value for c in grant.capabilities)
        updated = msgspec.structs.replace(
            record,
            token_user_id=grant.token_user_id,
            capabilities=capabilities,
            attributes=dict(grant.attributes),
            issued_at=int(now.timestamp()),
            expires_at=int(expires.timestamp()),
            key_arn=key.arn,
            request_id=caller.request_id if caller else record.request_id,
            client_ip=caller.client_ip if caller else record.client_ip,
            user_agent=(
                caller.user_agent[:USER_AGENT_MAX]
                if caller and caller.user_agent
                else record.user_agent
            ),
        )
        change = CapabilityChange(
            at=int(now.timestamp()),
            capabilities=capabilities,
            by=by,
            expires_at=updated.expires_at,
        )
        # The record first, then the signature: never a token the log does not know, nor
        # one whose capabilities are not the stored ones.
        with span("mapping.record"):
            result = await self._mapping.exchange(
                updated, change, version=view.version, override=override
            )
        if result is ChangeResult.CONFLICT:
            return None
        if result is ChangeResult.GONE:
            raise NotFound("no such participant for this user")
        if result is ChangeResult.DISCONNECTED:
            raise PermissionDenied("this participant was disconnected", rule="disconnected")
        # Counted before signing: a token counted but never signed keeps the count an
        # upper bound, never short (and a lost race, never signed, is not counted).
        if self._usage is not None:
            self._usage.record(key.arn, expires)
        with span("sign"):
            token = prepared.sign()
        log.info(
            "participant token exchanged",
            extra={
                "event": "token_exchanged",
                "participantId": record.participant_id,
                "appUserId": record.app_user_id,
                "issuer": record.issuer,
                "stageArn": record.stage_arn,
                "capabilities": capabilities,
                "attributeKeys": sorted(updated.attributes),
                "issuedAt": updated.issued_at,
                "expiresAt": updated.expires_at,
                "keyArn": key.arn,
                "by": by,
            },
        )
        return token, updated


def _changed_concurrently() -> ChangedConcurrently:
    return ChangedConcurrently(
        f"this participant was changed by other requests at the same time {CHANGE_ATTEMPTS} "
        "times running; nothing was changed by this one: retry"
    )
