"""`maxResults`/`nextToken` paging over resources ordered by their creation sequence.

The token names the cursor (the sequence number of the last item returned), not
an offset, so deleting a resource between pages never skips or repeats another.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from ivs_realtime_emulator.errors import validation

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
_PREFIX = "after:"


def _encode(cursor: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{cursor}".encode()).decode("ascii")


def _decode(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
        cursor = int(text.removeprefix(_PREFIX)) if text.startswith(_PREFIX) else None
    except (ValueError, binascii.Error, UnicodeError):
        cursor = None
    if cursor is None:
        raise validation("The nextToken is invalid")
    return cursor


def page(
    items: Sequence[T],
    cursor: Callable[[T], int],
    max_results: int | None,
    next_token: str | None,
) -> tuple[list[T], str | None]:
    """One page of `items` (sorted by ascending `cursor`) and the token of the next, if any."""
    size = max_results or DEFAULT_PAGE_SIZE
    remaining = list(items)
    if next_token:
        after = _decode(next_token)
        remaining = [item for item in remaining if cursor(item) > after]
    chosen = remaining[:size]
    token = _encode(cursor(chosen[-1])) if len(remaining) > size else None
    return chosen, token
