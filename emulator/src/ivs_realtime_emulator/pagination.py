"""`maxResults`/`nextToken` paging over resources ordered by their creation sequence.

The token names the cursor (the sequence number of the last item returned), not
an offset, so deleting a resource between pages never skips or repeats another.
It is also bound to the request it answers: its `scope` (operation, region and
every query member but the paging ones, see `scope_of`) travels in the token as a
digest, so a token given to another operation, region or query is a
ValidationException, as AWS answers it, rather than a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ivs_realtime_emulator.errors import validation

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
_PREFIX = "after:"
_PAGING_MEMBERS = frozenset({"nextToken", "maxResults"})


def scope_of(operation: str, region: str, params: Mapping[str, Any]) -> str:
    """What a token is bound to: the operation, the region and the query without paging."""
    query = {k: v for k, v in params.items() if k not in _PAGING_MEMBERS and v is not None}
    return f"{operation}|{region}|{json.dumps(query, sort_keys=True, default=str)}"


def _digest(scope: str) -> str:
    return hashlib.sha256(scope.encode("utf-8")).hexdigest()[:16]


def _encode(cursor: int, scope: str) -> str:
    text = f"{_PREFIX}{cursor}:{_digest(scope)}"
    return base64.urlsafe_b64encode(text.encode()).decode("ascii")


def _decode(token: str, scope: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
        number, _, digest = text.removeprefix(_PREFIX).partition(":")
        cursor = int(number) if text.startswith(_PREFIX) else None
    except (ValueError, binascii.Error, UnicodeError):
        cursor, digest = None, ""
    if cursor is None:
        raise validation("The nextToken is invalid")
    if digest != _digest(scope):
        raise validation(
            "The nextToken was issued for another request (operation, region or filters)"
        )
    return cursor


def page(
    operation: str,
    region: str,
    params: Mapping[str, Any],
    items: Iterable[T],
    cursor: Callable[[T], int],
    *,
    default_size: int = DEFAULT_PAGE_SIZE,
) -> tuple[list[T], str | None]:
    """One page of `items`, in ascending `cursor` order, as `operation`'s `params` ask
    (`maxResults`, `nextToken`), and the token of the next page, bound to the operation,
    the region and the rest of the query."""
    scope = scope_of(operation, region, params)
    size = params.get("maxResults") or default_size
    remaining = sorted(items, key=cursor)
    next_token = params.get("nextToken")
    if next_token:
        after = _decode(next_token, scope)
        remaining = [item for item in remaining if cursor(item) > after]
    chosen = remaining[:size]
    token = _encode(cursor(chosen[-1]), scope) if len(remaining) > size else None
    return chosen, token
