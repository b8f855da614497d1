"""Reading credentials off the wire: the `Authorization: Bearer` header (RFC 6750)
and the admin tokens that guard `/admin`.

Both are plain string work with no cryptography beyond a hash, kept here so the
HTTP layer has one small, well-tested place to get a credential from.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Final

from token_service.auth._common import MAX_TOKEN_CHARS
from token_service.errors import AuthenticationFailed, ConfigurationError

#: RFC 6750 `b64token`: what may follow "Bearer ". Anything else is not a token.
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MIN_ADMIN_TOKEN_CHARS: Final = 16
#: Room for the scheme and whitespace around a maximum-size token.
_MAX_HEADER_CHARS: Final = MAX_TOKEN_CHARS + 64


def parse_bearer(header_value: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value.

    The scheme is case-insensitive (RFC 9110 sec. 11.1). The size is checked first,
    so an oversized header costs nothing beyond its length.
    """
    if header_value is None or not header_value.strip():
        raise AuthenticationFailed("missing bearer token")
    if len(header_value) > _MAX_HEADER_CHARS:
        raise AuthenticationFailed("token too large")
    scheme, _, rest = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationFailed("unsupported authorization scheme (expected Bearer)")
    token = rest.strip(" ")
    if not token:
        raise AuthenticationFailed("missing bearer token")
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationFailed("token too large")
    if _B64TOKEN.fullmatch(token) is None:
        raise AuthenticationFailed("malformed authorization header")
    return token


class AdminTokens:
    """The configured admin bearer tokens, checked in constant time.

    Tokens are stored only as SHA-256 digests: comparing digests makes every
    comparison the same length (so the time taken says nothing about a token's
    length), and the object holds nothing worth printing. Every configured token is
    compared, with no early exit, so timing does not reveal which one matched.
    With no tokens configured, nothing verifies: admin routes are then closed.
    """

    __slots__ = ("_digests",)

    def __init__(self, tokens: Sequence[str]) -> None:
        if isinstance(tokens, str):
            # A bare string is a Sequence[str] too; iterating it would make one
            # "token" per character, which is never what the caller meant.
            raise ConfigurationError(["admin tokens must be a sequence of tokens, not a string"])
        problems: list[str] = []
        for index, token in enumerate(tokens, start=1):
            if len(token) < MIN_ADMIN_TOKEN_CHARS:
                problems.append(
                    f"admin token #{index} is shorter than {MIN_ADMIN_TOKEN_CHARS} characters"
                )
            elif _B64TOKEN.fullmatch(token) is None:
                problems.append(f"admin token #{index} has characters a bearer token cannot carry")
        if problems:
            raise ConfigurationError(problems)
        self._digests: tuple[bytes, ...] = tuple(_digest(token) for token in tokens)

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"AdminTokens(<{len(self._digests)} configured>)"

    def verify(self, presented: str) -> bool:
        if len(presented) > MAX_TOKEN_CHARS:
            return False
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:
            # `|=`, not `or`: short-circuiting would skip the remaining comparisons.
            matched |= hmac.compare_digest(candidate, digest)
        return matched

    def actor(self, presented: str) -> str:
        """Which configured token was presented, for the audit log: its position and a short
        digest (`admin-token#2:1a2b3c4d`), never the token; position 0 if none matched."""
        candidate = _digest(presented)
        position = 0
        for index, digest in enumerate(self._digests, start=1):
            if hmac.compare_digest(candidate, digest):
                position = index
        # Eight hex digits tell tokens apart in the audit log without helping to guess one.
        return f"admin-token#{position}:{candidate.hex()[:8]}"


def _digest(token: str) -> bytes:
    # surrogatepass: a presented str from an odd header decoding must not raise here.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
