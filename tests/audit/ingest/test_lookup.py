"""LookupEvents through botocore's Stubber: paging, throttling, resuming, and the 2 TPS limiter."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from registry_app.audit.ingest import IngestResult, ingest_source
from registry_app.audit.ingest_run import cursor_positions
from registry_app.aws.cloudtrail import CloudTrailReader, RateLimiter
from registry_app.aws.session import SourceConfig
from registry_app.models import AuditCursor, CloudTrailEvent, RegistrySource
from tests.audit.ingest import records as r
from tests.audit.ingest.conftest import FakeClock

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2025, 3, 14, 12, 0, 0, tzinfo=dt.UTC)
START = NOW - dt.timedelta(days=90)
SAGEMAKER_ATTR = [{"AttributeKey": "EventSource", "AttributeValue": "sagemaker.amazonaws.com"}]


def params(start: dt.datetime = START, end: dt.datetime = NOW, token: str | None = None, attr: Any = None) -> dict:
    out: dict[str, Any] = {
        "LookupAttributes": attr or SAGEMAKER_ATTR,
        "StartTime": start,
        "EndTime": end,
        "MaxResults": 50,
    }
    if token:
        out["NextToken"] = token
    return out


def page(recs: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"Events": [r.lookup_event(rec) for rec in recs]}
    if token:
        out["NextToken"] = token
    return out


class Harness:
    def __init__(self, source: RegistrySource, clock: FakeClock, **reader_kw: Any) -> None:
        self.source = source
        self.clock = clock
        self.limiter = RateLimiter(2.0, clock=clock, sleep=clock.sleep)
        self.reader = CloudTrailReader(
            SourceConfig.from_source(source), limiter=self.limiter, sleep=clock.sleep, **reader_kw
        )
        self.stubber = Stubber(self.reader._cloudtrail())
        self.stubber.activate()

    def ok(self, expected: dict[str, Any], response: dict[str, Any]) -> None:
        self.stubber.add_response("lookup_events", response, expected)

    def throttle(self, expected: dict[str, Any]) -> None:
        self.stubber.add_client_error(
            "lookup_events",
            service_error_code="ThrottlingException",
            service_message="Rate exceeded",
            http_status_code=400,
            expected_params=expected,
        )

    def run(self, now: dt.datetime = NOW, **kw: Any) -> IngestResult:
        self.source.refresh_from_db()
        return ingest_source(self.source, s3=False, reader=self.reader, clock=lambda: now, **kw)


@pytest.fixture
def source(db: None) -> RegistrySource:
    from tests.factories import RegistrySourceFactory

    return RegistrySourceFactory(name="prod", region=r.REGION, account_id=r.ACCOUNT, cloudtrail_bucket="")


@pytest.fixture
def harness(source: RegistrySource, fake_clock: FakeClock) -> Iterator[Harness]:
    h = Harness(source, fake_clock)
    yield h
    h.stubber.deactivate()


def lookup_state(source: RegistrySource) -> dict[str, Any]:
    return cursor_positions(source)[AuditCursor.Kind.LOOKUP]["passes"]["sagemaker"]


def test_pages_follow_next_token_and_names_are_filtered_client_side(harness: Harness) -> None:
    p1 = [r.approve("g", 3), r.describe(), r.create_package("g", 3)]
    p2 = [r.create_model("m3", r.arn_package("g", 3)), r.record("ListModelPackages", {}, read_only=True)]
    p3 = [r.create_group("g")]
    harness.ok(params(), page(p1, "T1"))
    harness.ok(params(token="T1"), page(p2, "T2"))
    harness.ok(params(token="T2"), page(p3))

    result = harness.run()

    harness.stubber.assert_no_pending_responses()
    assert result.lookup.complete and result.lookup.pages == 3
    assert result.lookup.records == 6 and result.lookup.relevant == 4 and result.lookup.inserted == 4
    assert set(CloudTrailEvent.objects.values_list("via", flat=True)) == {CloudTrailEvent.Via.LOOKUP}
    assert lookup_state(harness.source) == {
        "done_until": "2025-03-14T12:00:00Z",
        "window": None,
        "covered_from": "2024-12-14T12:00:00Z",  # the first window's start: LookupEvents' 90 days
    }
    # Three calls through a 2/s bucket (burst 1): two waits of half a second.
    assert harness.limiter.acquired == 3 and harness.clock.sleeps == [0.5, 0.5]


def test_throttling_is_waited_out_and_the_same_page_resent(harness: Harness) -> None:
    p1, p2 = [r.approve("g", 1)], [r.approve("g", 2), r.approve("g", 3)]
    harness.ok(params(), page(p1, "T1"))
    harness.throttle(params(token="T1"))
    harness.throttle(params(token="T1"))
    harness.ok(params(token="T1"), page(p2))  # exactly the same parameters every time

    result = harness.run()

    harness.stubber.assert_no_pending_responses()
    assert result.lookup.complete and result.lookup.throttled == 2
    assert CloudTrailEvent.objects.count() == 3  # nothing lost
    backoffs = [s for s in harness.clock.sleeps if s >= 1.0]
    assert backoffs == [1.0, 2.0]
    assert harness.limiter.acquired == 4  # every attempt paid a token


def test_persistent_throttling_keeps_the_page_and_the_next_run_resends_it_identically(
    source: RegistrySource, fake_clock: FakeClock
) -> None:
    first = Harness(source, fake_clock, max_throttle_waits=2)
    first.ok(params(), page([r.approve("g", 1)], "T1"))
    for _ in range(3):
        first.throttle(params(token="T1"))
    result = first.run()
    first.stubber.assert_no_pending_responses()
    assert not result.lookup.complete and result.lookup.inserted == 1
    assert any("resends it" in e for e in result.lookup.errors)
    state = lookup_state(source)
    assert state["window"] == {
        "start": "2024-12-14T12:00:00Z",
        "end": "2025-03-14T12:00:00Z",
        "token": "T1",
        "key": "EventSource",
        "value": "sagemaker.amazonaws.com",
    }

    later = NOW + dt.timedelta(minutes=10)
    second = Harness(source, fake_clock)
    second.ok(params(token="T1"), page([r.approve("g", 2)]))  # the stored window, not [.., later]
    result = second.run(now=later)
    second.stubber.assert_no_pending_responses()
    assert result.lookup.complete and CloudTrailEvent.objects.count() == 2

    # The next window starts at the previous end minus the overlap.
    third = Harness(source, fake_clock)
    third.ok(params(start=NOW - dt.timedelta(minutes=15), end=later + dt.timedelta(minutes=5)), page([]))
    third.run(now=later + dt.timedelta(minutes=5))
    third.stubber.assert_no_pending_responses()


def test_resume_after_a_crash_mid_window(
    source: RegistrySource, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry_app.audit import ingest_run

    first = Harness(source, fake_clock)
    first.ok(params(), page([r.approve("g", 1)], "T1"))
    first.ok(params(token="T1"), page([r.approve("g", 2)], "T2"))
    real = ingest_run.store_prepared
    calls = {"n": 0}

    def crash(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("worker killed mid-page")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_run, "store_prepared", crash)
    with pytest.raises(SystemExit):
        first.run()
    assert CloudTrailEvent.objects.count() == 1
    assert lookup_state(source)["window"]["token"] == "T1"
    monkeypatch.setattr(ingest_run, "store_prepared", real)

    second = Harness(source, fake_clock)
    second.ok(params(token="T1"), page([r.approve("g", 2)], "T2"))
    second.ok(params(token="T2"), page([r.approve("g", 3)]))
    result = second.run(now=NOW + dt.timedelta(hours=1))
    second.stubber.assert_no_pending_responses()
    assert result.lookup.complete and CloudTrailEvent.objects.count() == 3
    assert lookup_state(source)["done_until"] == "2025-03-14T12:00:00Z"


def test_an_expired_next_token_restarts_the_window(harness: Harness) -> None:
    from registry_app.audit.ingest_run import cursor_row

    cursor = cursor_row(harness.source, AuditCursor.Kind.LOOKUP)
    window = {"start": "2025-03-01T00:00:00Z", "end": "2025-03-02T00:00:00Z", "token": "OLD", "key": "EventSource",
              "value": "sagemaker.amazonaws.com"}  # fmt: skip
    cursor.position = {"passes": {"sagemaker": {"window": window}}}
    cursor.save()
    start, end = dt.datetime(2025, 3, 1, tzinfo=dt.UTC), dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
    harness.stubber.add_client_error(
        "lookup_events",
        service_error_code="InvalidNextTokenException",
        http_status_code=400,
        expected_params=params(start, end, "OLD"),
    )
    harness.ok(params(start, end), page([r.approve("g", 1)]))

    result = harness.run()

    harness.stubber.assert_no_pending_responses()
    assert result.lookup.complete and result.lookup.inserted == 1
    assert lookup_state(harness.source)["done_until"] == "2025-03-02T00:00:00Z"


def test_a_final_error_backs_off_the_beat_but_not_the_command(harness: Harness) -> None:
    harness.stubber.add_client_error("lookup_events", service_error_code="AccessDeniedException", http_status_code=400)
    result = harness.run()
    assert result.lookup.errors and not result.lookup.complete
    position = cursor_positions(harness.source)[AuditCursor.Kind.LOOKUP]
    assert position["failures"] == 1 and position["retry_after"] == "2025-03-14T12:05:00Z"

    beat = harness.run(now=NOW + dt.timedelta(minutes=2), respect_backoff=True)
    assert not beat.lookup.ran and "next try after" in beat.lookup.note

    harness.ok(params(), page([r.approve("g", 1)]))
    command = harness.run()
    harness.stubber.assert_no_pending_responses()
    assert command.lookup.complete and "retry_after" not in cursor_positions(harness.source)[AuditCursor.Kind.LOOKUP]


def test_since_is_clamped_to_the_90_day_window(harness: Harness) -> None:
    harness.ok(params(), page([]))
    harness.run(since=dt.date(2020, 1, 1))
    harness.stubber.assert_no_pending_responses()


def test_since_within_the_window_restarts_there(harness: Harness) -> None:
    harness.ok(params(start=dt.datetime(2025, 3, 10, tzinfo=dt.UTC)), page([]))
    harness.run(since=dt.date(2025, 3, 10))
    harness.stubber.assert_no_pending_responses()


def test_a_gap_longer_than_retention_is_reported(harness: Harness) -> None:
    from registry_app.audit.ingest_run import cursor_row

    cursor = cursor_row(harness.source, AuditCursor.Kind.LOOKUP)
    cursor.position = {"passes": {"sagemaker": {"done_until": "2024-01-01T00:00:00Z", "window": None}}}
    cursor.save()
    harness.ok(params(), page([]))
    result = harness.run()
    assert any("only in the trail's S3 files" in e for e in result.lookup.errors)


def test_a_resumed_window_older_than_retention_stores_the_clamped_start(
    source: RegistrySource, fake_clock: FakeClock
) -> None:
    """A window stored mid-walk (NextToken T1) that is older than 90 days when the next run resumes it:
    LookupEvents refuses the old StartTime, the reader resends from its horizon, and the cursor keeps
    that StartTime, so the run after it resends exactly that, spending no refused call."""
    from registry_app.audit.ingest_run import cursor_row

    later = NOW + dt.timedelta(days=3)  # the window below now starts 93 days back
    old_start, end = dt.datetime(2024, 12, 14, 12, 0, tzinfo=dt.UTC), NOW
    cursor = cursor_row(source, AuditCursor.Kind.LOOKUP)
    window = {"start": "2024-12-14T12:00:00Z", "end": "2025-03-14T12:00:00Z", "token": "T1", "key": "EventSource",
              "value": "sagemaker.amazonaws.com"}  # fmt: skip
    cursor.position = {"passes": {"sagemaker": {"window": window}}}
    cursor.save()
    clamped = dt.datetime(2024, 12, 17, 13, 0, tzinfo=dt.UTC)  # 90 days before `later`, + margin, to the hour

    # Run 1 resumes at T1, gets T2, then stops on a persistent throttle (the page is kept).
    first = Harness(source, fake_clock, now=lambda: later, max_throttle_waits=0)
    first.stubber.add_client_error(
        "lookup_events",
        service_error_code="InvalidTimeRangeException",
        service_message="The time range is outside the range of possible values",
        http_status_code=400,
        expected_params=params(old_start, end, "T1"),
    )
    first.ok(params(clamped, end, "T1"), page([r.approve("g", 1)], "T2"))
    first.stubber.add_client_error(
        "lookup_events", service_error_code="ThrottlingException", http_status_code=400,
        expected_params=params(clamped, end, "T2"),
    )  # fmt: skip
    result = first.run(now=later)
    first.stubber.assert_no_pending_responses()
    assert lookup_state(source)["window"]["start"] == "2024-12-17T13:00:00Z"
    assert lookup_state(source)["window"]["token"] == "T2"
    assert any("only in the trail's S3 files" in e for e in result.lookup.errors)

    # Run 2 (a new reader, which has not learnt the horizon): straight to the stored StartTime and T2.
    second = Harness(source, fake_clock, now=lambda: later)
    second.ok(params(clamped, end, "T2"), page([r.approve("g", 2)]))
    result = second.run(now=later)
    second.stubber.assert_no_pending_responses()
    assert result.lookup.complete and lookup_state(source)["done_until"] == "2025-03-14T12:00:00Z"


def test_a_push_by_a_user_sts_would_refuse_links_to_that_user(harness: Harness, django_user_model: Any) -> None:
    """Pushes send ``fold_identity(username)`` as the source identity (STS refuses ``josé.müller``), so
    CloudTrail names ``jose.muller-<hash>``: the event still links to its dashboard user."""
    from registry_app.aws.identity import fold_identity

    jose = django_user_model.objects.create_user("josé.müller", "jose@example.com", "pw-jose-123!")
    django_user_model.objects.create_user("jose.muller", "other@example.com", "pw-other-123!")  # not him
    folded = fold_identity(jose.username)
    assert folded != jose.username
    push = r.approve("g", 1, identity=r.assumed_role("GovernancePush", "gov-push-1", source_identity=folded))
    harness.ok(params(), page([push]))

    harness.run()

    harness.stubber.assert_no_pending_responses()
    assert CloudTrailEvent.objects.get().user_id == jose.pk


def test_assume_role_pass_when_enabled(harness: Harness, settings: Any) -> None:
    settings.AUDIT_LOOKUP_ASSUME_ROLE = True
    role = f"arn:aws:iam::{r.ACCOUNT}:role/ModelApprover"
    assume = r.record(
        "AssumeRole",
        {"roleArn": role, "roleSessionName": "mlead", "sourceIdentity": "mlead"},
        identity=r.iam_user("mlead"),
        source="sts.amazonaws.com",
    )
    service = r.record("AssumeRole", {"roleArn": role}, identity=r.aws_service("lambda.amazonaws.com"),
                       source="sts.amazonaws.com")  # fmt: skip
    harness.ok(params(), page([r.approve("g", 1)]))
    harness.ok(params(attr=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}]), page([assume, service]))

    result = harness.run()

    harness.stubber.assert_no_pending_responses()
    assert result.lookup.inserted == 2
    event = CloudTrailEvent.objects.get(event_name="AssumeRole")
    assert (event.resource_type, event.resource_name, event.actor_name) == ("role", role, "mlead")


def test_a_broken_cloud_trail_event_string_is_kept_from_the_outer_fields(harness: Harness) -> None:
    rec = r.approve("g", 1)
    event = r.lookup_event(rec) | {"CloudTrailEvent": "{truncated"}
    harness.ok(params(), {"Events": [event]})
    assert harness.run().lookup.inserted == 1
    stored = CloudTrailEvent.objects.get()
    assert stored.event_id == rec["eventID"] and stored.event_name == "UpdateModelPackage"


# ---------------------------------------------------------------------------------------------- the limiter


def test_limiter_paces_to_the_rate_with_an_injected_clock(fake_clock: FakeClock) -> None:
    limiter = RateLimiter(2.0, clock=fake_clock, sleep=fake_clock.sleep)
    grants = []
    for _ in range(11):
        limiter.acquire()
        grants.append(fake_clock.now)
    assert grants[-1] - grants[0] == pytest.approx(5.0)
    for i in range(2, len(grants)):  # never more than 2 in any 1-second window
        assert grants[i] - grants[i - 2] >= 1.0 - 1e-9
    fake_clock.now += 60  # idle: the bucket refills only up to its burst
    limiter.acquire()
    limiter.acquire()
    assert fake_clock.sleeps[-1] == pytest.approx(0.5)


def test_limiter_is_thread_safe() -> None:
    limiter = RateLimiter(100.0)
    started = time.monotonic()
    grants: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            limiter.acquire()
            with lock:
                grants.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limiter.acquired == 40
    assert max(grants) - started >= 39 / 100.0 - 0.01  # 40 tokens at 100/s, burst 1


def test_limiters_are_shared_per_account_and_region() -> None:
    from registry_app.aws.cloudtrail import limiter_for

    assert limiter_for(r.ACCOUNT, r.REGION) is limiter_for(r.ACCOUNT, r.REGION)
    assert limiter_for(r.ACCOUNT, r.REGION) is not limiter_for(r.ACCOUNT, "us-east-1")


def test_botocore_retries_pay_tokens_too(source: RegistrySource) -> None:
    """Each HTTP attempt (botocore's own retries included) takes a token: the limit holds under retries.

    Every attempt is answered on botocore's ``before-send`` (a spare error stands by), so nothing leaves
    the machine; moto is not used because its own ``before-send`` handler would answer first.
    """
    from registry_app.aws.errors import AwsError
    from tests.aws_helpers import inject_errors

    limiter = RateLimiter(50.0)
    reader = CloudTrailReader(SourceConfig.from_source(source), limiter=limiter, max_throttle_waits=0)
    attempts = inject_errors(
        reader._cloudtrail(),
        "LookupEvents",
        [(400, "ThrottlingException"), (400, "InvalidLookupAttributesException"), (400, "AccessDeniedException")],
    )
    with pytest.raises(AwsError) as info:
        reader.lookup_page(params())
    assert info.value.code == "InvalidLookupAttributesException"
    assert len(attempts) == 2 and limiter.acquired == 2
