"""The token request's path after authentication: decide, limit, record, issue.

request -> authenticate (api guard) -> decide (policy) -> limit + record (admission
gate) -> issue (issuer) -> respond (api). This module is the middle of that line,
kept free of HTTP so the exchange route and the CLI can share it.

Order matters: a policy refusal consumes no limit; a rate-limited or banned request
costs no signature and no IVS call (not even GetStage for an uncached stage); the
mapping record is stored before the token exists (local mode) or before it is returned
(ivs mode), never after.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from token_service.admission.gate import Admission, Gate
from token_service.admission.ratelimit import (
    Decision,
    Limit,
    RateLimits,
    response_headers,
)
from token_service.domain import AppUser, Grant, IssuedToken, TokenRequest, user_key
from token_service.errors import DomainError, PermissionDenied, RateLimited
from token_service.mapping.records import MappingRecord
from token_service.observability.tracing import span
from token_service.policy import RateLimitOverrides
from token_service.tokens.issuers import Issuer

log = logging.getLogger("token_service.issued")

#: User agents are kept for the audit record, cut to a length that bounds its size.
USER_AGENT_MAX = 256


class Decider(Protocol):
    def decide(self, user: AppUser, request: TokenRequest) -> Grant: ...

    def rate_limits_for(self, user: AppUser, stage_arn: str) -> RateLimitOverrides: ...


@dataclass(frozen=True)
class Caller:
    """Who is asking, as the HTTP edge saw it (for limits and the audit record)."""

    user: AppUser
    ip_subject: str
    client_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    token: IssuedToken
    decision: Decision
    record: MappingRecord
    record_deferred: bool


class IssuanceHooks(Protocol):
    def limit_decided(self, limit: str, allowed: bool) -> None: ...

    def issued(self, signer: str, seconds: float) -> None: ...

    def failed(self, signer: str, code: str) -> None:
        """Issuing failed after admission (IVS, the key, the mapping write), by problem code."""

    def recorded(self, deferred: bool) -> None:
        """The token's mapping record was written (or, `deferred`, kept in the outbox)."""


def record_for(token: IssuedToken, caller: Caller) -> MappingRecord:
    return MappingRecord(
        participant_id=token.participant_id,
        app_user_id=caller.user.user_id,
        token_user_id=token.user_id,
        issuer=caller.user.issuer,
        stage_arn=token.stage_arn,
        capabilities=sorted(c.value for c in token.capabilities),
        attributes=dict(token.attributes),
        issued_at=int(token.issued_at.timestamp()),
        expires_at=int(token.expires_at.timestamp()),
        signer=token.signer.value,
        key_arn=token.key_arn,
        request_id=caller.request_id,
        client_ip=caller.client_ip,
        user_agent=caller.user_agent[:USER_AGENT_MAX] if caller.user_agent else None,
    )


def limits_for(
    policy: Decider, rate_limits: RateLimits, caller: Caller, stage_arn: str
) -> list[Limit]:
    """The limits this caller's request on this stage counts against (policy overrides)."""
    overrides = policy.rate_limits_for(caller.user, stage_arn)
    return rate_limits.for_request(
        user_key=user_key(caller.user.issuer, caller.user.user_id),
        ip_subject=caller.ip_subject,
        stage_arn=stage_arn,
        user=overrides.user,
        ip=overrides.ip,
        stage=overrides.stage,
    )


def settle(admission: Admission, hooks: IssuanceHooks | None) -> Decision:
    """Refuse a banned or rate-limited request (403, 429); count the limit decisions."""
    if admission.ban_id is not None:
        raise PermissionDenied(
            "this user is banned from this stage", rule=f"ban {admission.ban_id}"
        )
    decision = admission.decision
    if hooks is not None:
        for state in decision.states:
            hooks.limit_decided(state.limit.name, state.allowed)
    if not decision.allowed:
        # Name only the limits the caller may know about; the stage's stays private.
        shown = [s.limit.name for s in decision.states if not s.allowed and s.limit.disclosed]
        which = f" ({', '.join(shown)} limit)" if shown else ""
        raise RateLimited(
            f"too many token requests{which}; retry later",
            decision.retry_after,
            response_headers(decision),
        )
    return decision


class TokenDesk:
    def __init__(
        self,
        *,
        policy: Decider,
        issuer: Issuer,
        gate: Gate,
        rate_limits: RateLimits | None,
        hooks: IssuanceHooks | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._policy = policy
        self._issuer = issuer
        self._gate = gate
        self._rate_limits = rate_limits
        self._hooks = hooks
        self._clock = clock

    async def issue(self, caller: Caller, request: TokenRequest) -> Outcome:
        with span("policy"):
            grant = self._policy.decide(caller.user, request)
        # No limits for an operator's token: it must not spend (or wait for) the user's.
        limits = (
            limits_for(self._policy, self._rate_limits, caller, grant.stage_arn)
            if self._rate_limits is not None
            else []
        )
        started = self._clock()
        # No IVS call before admission: a stage not in the cache is looked up only once
        # the request has passed its limits (else any app user could spend the
        # account's GetStage quota with made-up stage ARNs, at no cost to their limits).
        prepared = await self._issuer.prepare(grant)
        record = record_for(prepared.facts, caller) if prepared is not None else None
        # Bans, every limit and (when the stage is known) the record: one Redis script.
        with span("admission"):
            admission = await self._gate.admit(
                limits,
                issuer=caller.user.issuer,
                user_id=caller.user.user_id,
                stage_arn=grant.stage_arn,
                record=record,
            )
        decision = settle(admission, self._hooks)
        deferred = admission.record_deferred
        try:
            if prepared is None:
                # Admitted: only now may the stage cost a GetStage call.
                prepared = await self._issuer.prepare(grant, admitted=True)
                if prepared is not None:
                    record = record_for(prepared.facts, caller)
                    with span("mapping.record"):
                        deferred = await self._gate.record(record)
            if prepared is not None and record is not None:
                with span("sign"):
                    token = prepared.sign()
            else:
                with span("ivs.issue"):
                    token = await self._issuer.issue(grant)
                record = record_for(token, caller)
                with span("mapping.record"):
                    deferred = await self._gate.record(record)
        except DomainError as exc:
            if self._hooks is not None:
                self._hooks.failed(self._issuer.signer.value, exc.code)
            raise
        if self._hooks is not None:
            self._hooks.issued(token.signer.value, self._clock() - started)
            self._hooks.recorded(deferred)
        _audit(record, deferred)
        return Outcome(token=token, decision=decision, record=record, record_deferred=deferred)


def _audit(record: MappingRecord, deferred: bool) -> None:
    """The audit trail for log pipelines: one JSON line per token, never the token."""
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(
        "participant token issued",
        extra={
            "event": "token_issued",
            "participantId": record.participant_id,
            "appUserId": record.app_user_id,
            "tokenUserId": record.token_user_id,
            "issuer": record.issuer,
            "stageArn": record.stage_arn,
            "capabilities": record.capabilities,
            "attributeKeys": sorted(record.attributes),
            "issuedAt": record.issued_at,
            "expiresAt": record.expires_at,
            "signer": record.signer,
            "keyArn": record.key_arn,
            "clientIp": record.client_ip,
            "userAgent": record.user_agent,
            "recordDeferred": deferred,
        },
    )
