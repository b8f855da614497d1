"""Which app user an operator means: a user id, and whose it is.

An app user is (issuer, user id). An operator naming a user (a ban, a lookup) says whose
user id it is with an issuer: the issuer's name, none (`None`: tokens without `iss`, or
with an empty one), or `ANY_ISSUER` (`"*"`: the user id from every issuer). Left out, it
means every issuer, as it did before bans and lookups had an issuer, but only while that
cannot mix two users up: with a shared secret and OIDC accepted together, the same user id
can be two users, so leaving it out is refused, naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

from token_service.errors import FieldError, InvalidRequest
from token_service.mapping.records import ANY_ISSUER

#: What no user id holds: control characters (C0, DEL, C1) and lone surrogates.
_UNUSABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class UserNaming:
    """How an operator's (user id, issuer) is read in this deployment."""

    #: A shared secret and OIDC are both accepted: the issuer must be given.
    issuer_required: bool = False
    #: The identity provider's issuer, if any, to name in the error.
    oidc_issuer: str | None = None

    def issuer(
        self,
        user_id: str,
        issuer: str | msgspec.UnsetType | None,
        *,
        user_field: str = "userId",
        issuer_field: str = "issuer",
    ) -> str | None:
        """The issuer (or `ANY_ISSUER`) meant by an operator's input; a 400 naming the field
        when the user id cannot be any app user's or the issuer is required and missing."""
        if not user_id or _UNUSABLE.search(user_id):
            # No authenticated user has such an id (the claim is refused), a NUL would make
            # `domain.user_key` ambiguous, and a lone surrogate has no UTF-8 to hash.
            raise InvalidRequest(
                f"{user_field} is not a user id",
                [FieldError(user_field, "empty, or holds a control character or lone surrogate")],
            )
        if issuer is msgspec.UNSET:
            if self.issuer_required:
                raise InvalidRequest(
                    f"{issuer_field} is required: a shared secret and OIDC are both accepted, "
                    "so the same user id can be two users",
                    [FieldError(issuer_field, self._choices())],
                )
            return ANY_ISSUER
        return issuer or None

    def _choices(self) -> str:
        provider = f"{self.oidc_issuer!r} (the identity provider), " if self.oidc_issuer else ""
        return (
            f"give the user's issuer: {provider}the `iss` of the shared-secret tokens, "
            f"null or empty for tokens without one, or {ANY_ISSUER!r} for every issuer"
        )
