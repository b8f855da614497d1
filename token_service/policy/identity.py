"""The `user_id` a participant token carries: the app user id, or a keyed pseudonym.

IVS shows `user_id` to every participant of a stage, so an operator whose app ids
are e-mail addresses or database keys can publish a pseudonym instead: stable per
user (participants still recognise each other across sessions and the audit mapping
can link it back), but meaningless without the server's secret.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
from typing import Final

#: IVS limit on the token's `user_id`, in characters.
USER_ID_MAX_CHARS: Final = 128
#: Shortest accepted pseudonym secret: HMAC-SHA256 gains nothing from more, and less
#: would make the pseudonyms guessable for small user-id spaces.
PSEUDONYM_SECRET_MIN_BYTES: Final = 32
#: Prefixed to every HMAC input so the same secret, if ever reused for another purpose,
#: cannot produce values that collide with these pseudonyms.
PSEUDONYM_CONTEXT: Final = b"ivs-token-service/user-id/v1\x00"


class UserIdMode(enum.StrEnum):
    """What a token's `user_id` holds: the app user id, or its keyed pseudonym."""

    APP = "app"
    PSEUDONYM = "pseudonym"


def pseudonymize(user_id: str, secret: bytes) -> str:
    """The pseudonym of `user_id`: base64url (no padding, 43 characters) of
    HMAC-SHA256(secret, PSEUDONYM_CONTEXT + UTF-8 of user_id).

    Deterministic, so the same user gets the same pseudonym on every token, and an
    operator holding the secret can recompute it to find a user's participants.
    """
    # surrogatepass: an id decoded from JSON may hold a lone surrogate; it must still
    # map to one stable pseudonym instead of failing.
    message = PSEUDONYM_CONTEXT + user_id.encode("utf-8", "surrogatepass")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def user_id_mode_problems(mode: str, secret: bytes | None) -> list[tuple[str, str]]:
    """Every problem with a (mode, secret) pair, as (setting, message) pairs."""
    if mode not in set(UserIdMode):
        return [("user_id_mode", f"must be 'app' or 'pseudonym', not {mode!r}")]
    if mode == "pseudonym":
        if secret is None:
            return [("pseudonym_secret", "required when user_id_mode is 'pseudonym'")]
        if len(secret) < PSEUDONYM_SECRET_MIN_BYTES:
            return [
                (
                    "pseudonym_secret",
                    f"must be at least {PSEUDONYM_SECRET_MIN_BYTES} bytes, got {len(secret)}",
                )
            ]
    return []
