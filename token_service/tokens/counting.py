"""The local issuer, counting: every token is counted under the key that signs it.

The count (`keys.usage`) is what a revocation reports as invalidated and what tells when a
retiring key is safe to delete, so every flow that signs with a key (issue, exchange,
admin-issued) goes through this wrapper.
"""

from __future__ import annotations

from token_service.domain import Grant, IssuedToken, Signer
from token_service.keys.usage import KeyUsage
from token_service.tokens.issuers import Issuer, PreparedToken


class CountingIssuer:
    """Wraps the local issuer: counts every token under the key that signs it."""

    def __init__(self, inner: Issuer, usage: KeyUsage) -> None:
        self._inner = inner
        self._usage = usage

    @property
    def signer(self) -> Signer:
        return self._inner.signer

    async def prepare(self, grant: Grant, *, admitted: bool = False) -> PreparedToken | None:
        prepared = await self._inner.prepare(grant, admitted=admitted)
        # Counted before signing: a token prepared but never signed makes the count an
        # upper bound, never short.
        if prepared is not None and prepared.facts.key_arn is not None:
            self._usage.record(prepared.facts.key_arn, prepared.facts.expires_at)
        return prepared

    async def issue(self, grant: Grant) -> IssuedToken:
        issued = await self._inner.issue(grant)
        if issued.key_arn is not None:
            self._usage.record(issued.key_arn, issued.expires_at)
        return issued
