"""Choosing the signer per request: auto mode, and ivs mode's fallback to local signing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from token_service.domain import Capability, Grant, IssuedToken, Signer
from token_service.errors import StageNotFound
from token_service.ivs.budget import BudgetExhausted
from token_service.ivs.client import IvsThrottled
from token_service.tokens.issuers import AutoIssuer, IvsWithLocalFallback

GRANT = Grant(
    stage_arn="arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456",
    token_user_id="u",
    capabilities=frozenset({Capability.SUBSCRIBE}),
    duration_minutes=60,
    attributes={},
)


class FakeIssuer:
    def __init__(self, signer: Signer, error: Exception | None = None) -> None:
        self.signer = signer
        self.error = error

    async def prepare(self, grant: Grant, *, admitted: bool = False) -> None:
        return None

    async def issue(self, grant: Grant) -> IssuedToken:
        if self.error is not None:
            raise self.error
        now = datetime.now(UTC)
        return IssuedToken(
            token="t",
            participant_id="p",
            user_id=grant.token_user_id,
            stage_arn=grant.stage_arn,
            capabilities=grant.capabilities,
            attributes={},
            duration_minutes=grant.duration_minutes,
            issued_at=now,
            expires_at=now,
            signer=self.signer,
            key_arn=None,
        )


class Keys:
    def __init__(self, active: Any) -> None:
        self._active = active

    def active(self) -> Any:
        return self._active


async def test_auto_signs_locally_while_a_key_is_active() -> None:
    issuer = AutoIssuer(FakeIssuer(Signer.LOCAL), FakeIssuer(Signer.IVS), Keys(object()))

    assert (await issuer.issue(GRANT)).signer is Signer.LOCAL


async def test_auto_asks_ivs_without_an_active_key() -> None:
    issuer = AutoIssuer(FakeIssuer(Signer.LOCAL), FakeIssuer(Signer.IVS), Keys(None))

    assert (await issuer.issue(GRANT)).signer is Signer.IVS


@pytest.mark.parametrize(
    "exhausted",
    [BudgetExhausted("no slot", retry_after=1), IvsThrottled("throttled", retry_after=1)],
)
async def test_fallback_signs_locally_when_ivs_capacity_is_exhausted(exhausted: Exception) -> None:
    issuer = IvsWithLocalFallback(
        FakeIssuer(Signer.IVS, exhausted), FakeIssuer(Signer.LOCAL), Keys(object())
    )

    assert (await issuer.issue(GRANT)).signer is Signer.LOCAL


async def test_fallback_without_a_key_keeps_the_capacity_error() -> None:
    issuer = IvsWithLocalFallback(
        FakeIssuer(Signer.IVS, BudgetExhausted("no slot", retry_after=1)),
        FakeIssuer(Signer.LOCAL),
        Keys(None),
    )

    with pytest.raises(BudgetExhausted):
        await issuer.issue(GRANT)


async def test_fallback_keeps_errors_that_are_not_about_capacity() -> None:
    issuer = IvsWithLocalFallback(
        FakeIssuer(Signer.IVS, StageNotFound("no such stage")),
        FakeIssuer(Signer.LOCAL),
        Keys(object()),
    )

    with pytest.raises(StageNotFound):
        await issuer.issue(GRANT)
