"""Query parameters of the audit pages that are not cursors: ``parse_when`` (ISO-8601 dates and times,
including the ``YYYY-MM-DDTHH:MM[:SS]`` that ``<input type="datetime-local">`` sends).

The one place a date or time typed into an audit form (``since``, ``until``, ``at``) is parsed.
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

__all__ = ["parse_when"]

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_PRINTABLE_ASCII = re.compile(r"[ -~]+")


def parse_when(text: str, *, end: bool = False) -> dt.datetime | None:
    """An ISO-8601 date or datetime (naive means UTC). A bare date as an end bound means the end of that day.

    Raises ValueError for text that is neither, and for a moment outside EARLIEST_INPUT .. LATEST_INPUT.
    """
    text = (text or "").strip()
    if not text:
        return None
    if not _PRINTABLE_ASCII.fullmatch(text):
        # Python's fromisoformat ignores a trailing NUL ("2025-03-14T09:30\x00"): refuse, never guess.
        raise ValueError(f"{text!r} is not an ISO-8601 date or time")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        # parse_datetime accepts a bare date as midnight; a bare date is handled below (end of day).
        moment = None if _DATE_ONLY.fullmatch(text) else parse_datetime(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO-8601 date or time") from exc
    if moment is None:
        try:
            day = parse_date(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an ISO-8601 date or time") from exc
        if day is None:
            raise ValueError(f"{text!r} is not an ISO-8601 date or time")
        moment = dt.datetime.combine(day, dt.time.min)
        if end:
            moment += dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    if not in_input_range(moment):
        raise ValueError(f"{text!r} is outside {EARLIEST_INPUT:%Y-%m-%d} .. {LATEST_INPUT:%Y-%m-%d}")
    return moment


# Moments given as input (dates, cursors) must fall between these: far enough from datetime's own
# limits that converting to UTC or subtracting a period never overflows (a 500), wide enough for
# any audit question.
EARLIEST_INPUT = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST_INPUT = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def in_input_range(moment: dt.datetime) -> bool:
    try:
        return EARLIEST_INPUT <= moment.astimezone(dt.UTC) <= LATEST_INPUT
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return False
