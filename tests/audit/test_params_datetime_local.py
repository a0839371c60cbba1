"""parse_when takes what <input type="datetime-local"> sends, and keeps every older form and its limits."""

from __future__ import annotations

import datetime as dt

import pytest

from registry_app.audit.params import parse_when

UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-14T09:30", dt.datetime(2025, 3, 14, 9, 30, tzinfo=UTC)),  # datetime-local, no seconds
        ("2025-03-14T09:30:15", dt.datetime(2025, 3, 14, 9, 30, 15, tzinfo=UTC)),  # step="1"
        ("2025-03-14T09:30:15.250", dt.datetime(2025, 3, 14, 9, 30, 15, 250000, tzinfo=UTC)),
        ("  2025-03-14T09:30  ", dt.datetime(2025, 3, 14, 9, 30, tzinfo=UTC)),
        ("2025-03-14", dt.datetime(2025, 3, 14, tzinfo=UTC)),
        ("2025-03-14T09:30Z", dt.datetime(2025, 3, 14, 9, 30, tzinfo=UTC)),
        ("2025-03-14T11:30+02:00", dt.datetime(2025, 3, 14, 9, 30, tzinfo=UTC)),
        ("2025-03-14 09:30", dt.datetime(2025, 3, 14, 9, 30, tzinfo=UTC)),
    ],
)
def test_accepted_forms(text: str, expected: dt.datetime) -> None:
    assert parse_when(text) == expected


def test_datetime_local_as_an_end_bound_is_that_moment() -> None:
    assert parse_when("2025-03-14T09:30", end=True) == dt.datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    assert parse_when("2025-03-14", end=True) == dt.datetime(2025, 3, 14, 23, 59, 59, 999999, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "1899-12-31T23:59",  # before EARLIEST_INPUT
        "9000-01-01T00:01",  # after LATEST_INPUT
        "0001-01-01T00:00",
        "9999-12-31T23:59",
        "0001-01-01T00:00:00+01:00",  # overflows when converted to UTC
        "2025-02-30T10:00",
        "2025-03-14T24:00",
        "2025-03-14T09:60",
        "2025-03-14T",
        "14/03/2025 09:30",
        "2025-03-14T09:30\x00",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_when(text)
