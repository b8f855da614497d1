"""`iso_utc`: the API's one way to write a moment, as strftime would write it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from token_service.domain import iso_utc

MOMENTS = [
    datetime(2026, 12, 6, 17, 3, 9, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC),
    datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2026, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_a_moment_is_written_as_strftime_writes_it_in_utc(moment: datetime) -> None:
    assert iso_utc(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_moment_in_another_zone_is_written_in_utc() -> None:
    moment = datetime(2026, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))

    assert iso_utc(moment) == "2026-05-31T20:00:00Z"


def test_unix_seconds_are_written_as_the_same_moment() -> None:
    assert iso_utc(1_796_576_589) == "2026-12-06T17:03:09Z"
