"""Contract tests of LookupEvents: paging, and a resumed window older than CloudTrail's 90 days."""

from __future__ import annotations

import datetime as dt

import pytest

from registry_app.aws.cloudtrail import CloudTrailReader, RateLimiter
from registry_app.aws.errors import AwsError
from registry_app.aws.session import SourceConfig
from tests.audit.ingest import records as r
from tests.aws.contracts import REGION, Stubs, contract

NOW = dt.datetime(2025, 6, 20, 12, 34, 56, tzinfo=dt.UTC)
ATTR = [{"AttributeKey": "EventSource", "AttributeValue": "sagemaker.amazonaws.com"}]
TIME_RANGE = "The time range is outside the range of possible values."


def lookup(start: dt.datetime, end: dt.datetime, token: str | None = None) -> dict:
    params = {"LookupAttributes": ATTR, "StartTime": start, "EndTime": end, "MaxResults": 50}
    return {**params, "NextToken": token} if token else params


@pytest.fixture
def reader() -> CloudTrailReader:
    clock = iter(range(10**6))
    limiter = RateLimiter(1000.0, clock=lambda: float(next(clock)), sleep=lambda s: None)
    cfg = SourceConfig(name="prod", region=REGION)
    return CloudTrailReader(cfg, limiter=limiter, sleep=lambda s: None, now=lambda: NOW)


@contract("cloudtrail", "LookupEvents")
def test_pages_follow_next_token(reader: CloudTrailReader, trail_stubs: Stubs) -> None:
    start, end = NOW - dt.timedelta(days=1), NOW
    trail_stubs.ok(
        "cloudtrail",
        "LookupEvents",
        {"Events": [r.lookup_event(r.approve("g", 3))], "NextToken": "T2"},
        lookup(start, end),
    )
    trail_stubs.ok("cloudtrail", "LookupEvents", {"Events": []}, lookup(start, end, "T2"))

    first = reader.lookup_page(lookup(start, end))
    second = reader.lookup_page(lookup(start, end, first.next_token))

    assert len(first.records) == 1 and first.next_token == "T2" and first.start_clamped_to is None
    assert second.records == [] and second.next_token is None


@contract("cloudtrail", "LookupEvents")
def test_a_resumed_window_older_than_90_days_is_clamped_not_failed_forever(
    reader: CloudTrailReader, trail_stubs: Stubs
) -> None:
    """Fails on the old code: a window stored by a run that stopped half-way and resumed more than
    90 days after its start is answered InvalidTimeRangeException on every run, forever."""
    start, end = NOW - dt.timedelta(days=95), NOW - dt.timedelta(days=80)
    horizon = dt.datetime(2025, 3, 22, 13, 0, tzinfo=dt.UTC)  # NOW - 90 days + 5 min, up to the hour
    trail_stubs.error(
        "cloudtrail", "LookupEvents", "InvalidTimeRangeException", TIME_RANGE, expected=lookup(start, end, "T5")
    )
    trail_stubs.ok(
        "cloudtrail",
        "LookupEvents",
        {"Events": [r.lookup_event(r.approve("g", 4))], "NextToken": "U2"},
        lookup(horizon, end, "T5"),
    )
    # The next page is sent clamped at once: no second failed call.
    trail_stubs.ok("cloudtrail", "LookupEvents", {"Events": []}, lookup(horizon, end, "U2"))

    first = reader.lookup_page(lookup(start, end, "T5"))
    second = reader.lookup_page(lookup(start, end, first.next_token))

    assert reader.retention_start() == horizon
    assert first.start_clamped_to == horizon and len(first.records) == 1 and first.next_token == "U2"
    assert second.start_clamped_to == horizon and second.next_token is None
    assert reader.stats.as_dict() == {"LookupEvents": 3}


@contract("cloudtrail", "LookupEvents")
def test_a_window_entirely_older_than_90_days_ends_empty(reader: CloudTrailReader, trail_stubs: Stubs) -> None:
    start, end = NOW - dt.timedelta(days=120), NOW - dt.timedelta(days=100)
    trail_stubs.error(
        "cloudtrail", "LookupEvents", "InvalidTimeRangeException", TIME_RANGE, expected=lookup(start, end)
    )

    page = reader.lookup_page(lookup(start, end))

    assert page.records == [] and page.next_token is None and page.start_clamped_to is not None
    assert reader.lookup_page(lookup(start, end)).next_token is None  # no call at all the second time


@contract("cloudtrail", "LookupEvents")
def test_a_time_range_error_inside_the_90_days_is_not_hidden(reader: CloudTrailReader, trail_stubs: Stubs) -> None:
    start, end = NOW - dt.timedelta(days=1), NOW - dt.timedelta(days=2)  # start after end
    trail_stubs.error(
        "cloudtrail", "LookupEvents", "InvalidTimeRangeException", TIME_RANGE, expected=lookup(start, end)
    )

    with pytest.raises(AwsError) as caught:
        reader.lookup_page(lookup(start, end))
    assert caught.value.code == "InvalidTimeRangeException"
