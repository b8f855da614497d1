"""The desk's decisions for an operator's token (`token-service participant-token`).

An operator mints a token for a test or an incident through the same `TokenDesk` as an app
user's request, so it is checked, banned, recorded and signed the same way; only the
decision differs: the policy's `operator_grant` instead of its rules, and no rate limit.
"""

from __future__ import annotations

from token_service.domain import AppUser, Grant, TokenRequest
from token_service.policy import Policy, RateLimitOverrides


class OperatorDecider:
    """`desk.Decider` for operators' tokens."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def decide(self, user: AppUser, request: TokenRequest) -> Grant:
        return self._policy.operator_grant(user, request)

    def rate_limits_for(self, user: AppUser, stage_arn: str) -> RateLimitOverrides:
        """None: the desk of operators' tokens counts no limit (it has no `RateLimits`)."""
        return RateLimitOverrides()
