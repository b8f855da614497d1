"""The token route reads its body itself: the announced and received lengths it refuses."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from token_service.errors import InvalidRequest
from token_service.http.routes.tokens import read_body


def receiving(*chunks: bytes) -> Any:
    events = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    return receive


async def test_the_body_is_read_whole_across_chunks() -> None:
    assert await read_body(receiving(b'{"a":', b"1}"), b"7") == b'{"a":1}'


@pytest.mark.parametrize("announced", [b"abc", b"-1", b" 7", b"+7", b"1_0", b"", b"\xff"])
async def test_a_content_length_that_is_no_number_of_bytes_is_a_400_naming_it(
    announced: bytes,
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await read_body(receiving(b"{}"), announced)
    assert [error.field for error in refused.value.errors] == ["Content-Length"]


async def test_an_announced_or_received_length_over_the_limit_is_413() -> None:
    with pytest.raises(RequestEntityTooLarge):
        await read_body(receiving(b"{}"), b"11", limit=10)
    with pytest.raises(RequestEntityTooLarge):
        await read_body(receiving(b"x" * 6, b"x" * 6), None, limit=10)
