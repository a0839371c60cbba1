"""The trail's S3 files in moto: incremental listing, de-duplication, skipped and corrupt files, backfill."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registry_app.audit.ingest import IngestResult, ingest_source
from registry_app.audit.ingest_run import cursor_positions
from registry_app.aws.errors import RetryableAwsError
from registry_app.models import AuditCursor, CloudTrailEvent, RegistrySource
from tests.audit.ingest import records as r
from tests.audit.ingest.conftest import Trail, days_ago

pytestmark = pytest.mark.django_db


def run(source: RegistrySource, **kw: Any) -> IngestResult:
    source.refresh_from_db()
    return ingest_source(source, lookup=False, **kw)


def ids() -> set[str]:
    return set(CloudTrailEvent.objects.values_list("event_id", flat=True))


def test_first_run_reads_log_files_only_for_the_source_account_and_region(
    trail_source: RegistrySource, trail: Trail
) -> None:
    day = days_ago(3)
    kept = [r.create_group("credit-risk", when=day), r.create_package("credit-risk", 1, when=day)]
    trail.deliver([*kept, r.describe(when=day)], day)
    trail.deliver([r.approve("credit-risk", 1, when=day)], day + dt.timedelta(minutes=5), "B" * 16)
    # Siblings that must never be read: digests, Insights, another region, another account.
    trail.put(f"AWSLogs/{r.ACCOUNT}/CloudTrail-Digest/{r.REGION}/{day:%Y/%m/%d}/digest.json.gz", b"digest")
    trail.put(f"AWSLogs/{r.ACCOUNT}/CloudTrail-Insight/{r.REGION}/{day:%Y/%m/%d}/insight.json.gz", b"insight")
    trail.deliver([r.approve("other", 1, when=day)], day, region="us-east-1")
    trail.deliver([r.approve("other", 2, when=day)], day, account="444455556666")
    trail.put(f"AWSLogs/{r.ACCOUNT}/CloudTrail/{r.REGION}/{day:%Y/%m/%d}/", b"")  # a folder marker

    result = run(trail_source)

    assert result.s3.ran and result.s3.complete and not result.s3.errors
    assert result.s3.pages == 2  # two log files read
    assert result.aws_calls["GetObject"] == 2
    assert result.s3.records == 4 and result.s3.relevant == 3 and result.s3.inserted == 3
    assert CloudTrailEvent.objects.count() == 3
    assert set(CloudTrailEvent.objects.values_list("via", flat=True)) == {CloudTrailEvent.Via.S3}
    assert set(CloudTrailEvent.objects.values_list("source__name", flat=True)) == {"prod"}
    assert result.s3.skipped_files == 1  # the folder marker
    assert "3 new CloudTrail events" in result.lines()[0]


def test_second_run_reads_only_new_files(trail_source: RegistrySource, trail: Trail) -> None:
    day = days_ago(2)
    trail.deliver([r.approve("g", 1, when=day)], day, "A" * 16)
    trail.deliver([r.approve("g", 2, when=day)], day + dt.timedelta(minutes=5), "B" * 16)
    first = run(trail_source)
    assert first.s3.inserted == 2

    nothing = run(trail_source)
    assert nothing.s3.pages == 0 and nothing.s3.inserted == 0
    assert "GetObject" not in nothing.aws_calls

    later = day + dt.timedelta(minutes=10)
    trail.deliver([r.approve("g", 3, when=later)], later, "C" * 16)
    second = run(trail_source)
    assert second.s3.pages == 1 and second.s3.inserted == 1
    assert second.aws_calls["GetObject"] == 1
    assert CloudTrailEvent.objects.count() == 3


def test_a_file_delivered_in_the_same_minute_that_sorts_earlier_is_not_missed(
    trail_source: RegistrySource, trail: Trail
) -> None:
    """File names carry the delivery minute plus a random suffix: a plain StartAfter=last key skips it."""
    when = days_ago(1)
    trail.deliver([r.approve("g", 1, when=when)], when, "M" * 16)
    run(trail_source)
    late = trail.deliver([r.approve("g", 2, when=when)], when, "A" * 16)  # same minute, sorts before "MMM..."
    position = cursor_positions(trail_source)[AuditCursor.Kind.S3]
    (state,) = position["roots"].values()
    assert late < state["last_key"]

    result = run(trail_source)

    assert result.s3.inserted == 1 and result.aws_calls["GetObject"] == 1  # the old file is not read again
    assert CloudTrailEvent.objects.count() == 2


def test_duplicates_within_and_across_files_are_stored_once(trail_source: RegistrySource, trail: Trail) -> None:
    day = days_ago(2)
    approval = r.approve("g", 1, when=day)
    trail.deliver([approval, approval, r.create_package("g", 1, when=day)], day, "A" * 16)
    trail.deliver([approval], day + dt.timedelta(minutes=5), "B" * 16)

    result = run(trail_source)

    assert result.s3.relevant == 4 and result.s3.inserted == 2 and result.s3.duplicates == 2
    assert CloudTrailEvent.objects.filter(event_id=approval["eventID"]).count() == 1


def test_a_corrupt_file_is_recorded_and_the_others_continue(trail_source: RegistrySource, trail: Trail) -> None:
    day = days_ago(2)
    trail.deliver([r.approve("g", 1, when=day)], day, "A" * 16)
    bad = trail.put(r.log_key(day, "B" * 16), r.gz([r.approve("g", 2)])[:30])  # truncated gzip
    not_json = trail.put(r.log_key(day, "C" * 16), b"\x1f\x8b" + b"garbage")
    trail.deliver([r.approve("g", 3, when=day)], day, "D" * 16)

    result = run(trail_source)

    assert result.s3.inserted == 2 and result.s3.skipped_files == 2
    assert any(bad in error for error in result.s3.errors)
    position = cursor_positions(trail_source)[AuditCursor.Kind.S3]
    assert set(position["failed"]) == {bad, not_json}
    again = run(trail_source)
    assert "GetObject" not in again.aws_calls  # recorded, not retried forever


def test_a_retryable_failure_stops_before_the_file_and_the_next_run_reads_it(
    trail_source: RegistrySource, trail: Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry_app.aws.cloudtrail import CloudTrailReader

    day = days_ago(2)
    trail.deliver([r.approve("g", 1, when=day)], day, "A" * 16)
    flaky = trail.deliver([r.approve("g", 2, when=day)], day, "B" * 16)
    trail.deliver([r.approve("g", 3, when=day)], day, "C" * 16)
    real_get = CloudTrailReader.get_bytes

    def failing(self: CloudTrailReader, bucket: str, key: str) -> bytes:
        if key == flaky:
            raise RetryableAwsError("GetObject: SlowDown", operation="GetObject", code="SlowDown")
        return real_get(self, bucket, key)

    monkeypatch.setattr(CloudTrailReader, "get_bytes", failing)
    first = run(trail_source)
    assert first.s3.inserted == 1 and not first.s3.complete
    (state,) = cursor_positions(trail_source)[AuditCursor.Kind.S3]["roots"].values()
    assert state["last_key"] < flaky

    monkeypatch.setattr(CloudTrailReader, "get_bytes", real_get)
    second = run(trail_source)
    assert second.s3.inserted == 2 and second.s3.complete
    assert CloudTrailEvent.objects.count() == 3


def test_organization_trail_and_prefix(trail_source: RegistrySource, trail: Trail) -> None:
    trail_source.cloudtrail_prefix = "/central/logs/"
    trail_source.save()
    day = days_ago(1)
    trail.deliver([r.approve("g", 1, when=day)], day, prefix="central/logs", org="o-exampleorgid")
    trail.deliver(
        [r.approve("g", 2, when=day)], day, prefix="central/logs", org="o-exampleorgid", account="444455556666"
    )
    trail.deliver([r.approve("g", 3, when=day)], day)  # outside the prefix

    result = run(trail_source)

    assert result.s3.inserted == 1
    (root,) = cursor_positions(trail_source)[AuditCursor.Kind.S3]["roots"]
    assert root == f"central/logs/AWSLogs/o-exampleorgid/{r.ACCOUNT}/CloudTrail/{r.REGION}/"


def test_first_run_starts_a_bounded_number_of_days_back_and_since_backfills(
    trail_source: RegistrySource, trail: Trail, settings: Any
) -> None:
    settings.AUDIT_S3_INITIAL_DAYS = 30
    old, recent = days_ago(200), days_ago(5)
    trail.deliver([r.approve("g", 1, when=old)], old)
    trail.deliver([r.approve("g", 2, when=recent)], recent)

    assert run(trail_source).s3.inserted == 1

    backfill = run(trail_source, since=(old - dt.timedelta(days=1)).date())
    assert backfill.s3.inserted == 1 and backfill.s3.pages == 2 and backfill.s3.duplicates == 1
    assert CloudTrailEvent.objects.count() == 2
    newer_day = days_ago(150)
    trail.deliver([r.approve("g", 3, when=newer_day)], newer_day)
    assert run(trail_source, since=days_ago(1).date()).s3.inserted == 0  # that day's folder onwards only


def test_events_of_a_file_and_its_cursor_commit_together(
    trail_source: RegistrySource, trail: Trail, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A crash while storing a file's events leaves neither its events nor a cursor past it."""
    from registry_app.audit import ingest_run

    settings.AUDIT_COMMIT_EVENTS = 1  # one file per transaction

    day = days_ago(2)
    trail.deliver([r.approve("g", 1, when=day)], day, "A" * 16)
    trail.deliver([r.approve("g", 2, when=day), r.approve("g", 3, when=day)], day, "B" * 16)
    real = ingest_run.store_from_files  # trail files (digest validation on) are stored with their file rows
    calls = {"n": 0}

    def crash_on_second(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_run, "store_from_files", crash_on_second)
    with pytest.raises(RuntimeError):
        run(trail_source)
    assert CloudTrailEvent.objects.count() == 1
    (state,) = cursor_positions(trail_source)[AuditCursor.Kind.S3]["roots"].values()
    assert state["last_key"].endswith("A" * 16 + ".json.gz")

    monkeypatch.setattr(ingest_run, "store_from_files", real)
    assert run(trail_source).s3.inserted == 2
    assert CloudTrailEvent.objects.count() == 3


def test_no_bucket_means_no_s3_pass(db: None) -> None:
    from tests.factories import RegistrySourceFactory

    source = RegistrySourceFactory(name="nobucket", cloudtrail_bucket="")
    result = ingest_source(source, lookup=False)
    assert not result.s3.ran and "no CloudTrail bucket" in result.s3.note


def test_another_ingest_holding_the_lock_skips_the_run(trail_source: RegistrySource, trail: Trail) -> None:
    from registry_app.audit.ingest_run import acquire_audit_lock, release_audit_lock

    token = acquire_audit_lock(trail_source)
    assert token is not None
    assert acquire_audit_lock(trail_source) is None
    result = run(trail_source)
    assert result.skipped and "skipped" in result.lines()[0]
    release_audit_lock(trail_source, token)
    assert not run(trail_source).skipped


def test_an_expired_lease_can_be_taken_over(trail_source: RegistrySource) -> None:
    import time

    from registry_app.audit.ingest_run import acquire_audit_lock, renew_audit_lock

    stale = acquire_audit_lock(trail_source, now=time.time() - 10_000)
    assert stale is not None
    fresh = acquire_audit_lock(trail_source)
    assert fresh is not None and fresh != stale
    assert not renew_audit_lock(trail_source, stale)  # the old holder learns it lost the lease


def test_audit_lock_is_separate_from_the_registry_sync_lock(trail_source: RegistrySource, trail: Trail) -> None:
    from registry_app.mirror.leases import acquire_lock, release_lock

    sync_token = acquire_lock(trail_source)
    assert sync_token is not None
    try:
        assert not run(trail_source).skipped
    finally:
        release_lock(trail_source, sync_token)


def test_a_backlog_is_parsed_in_worker_processes(
    trail_source: RegistrySource, trail: Trail, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry_app.audit.ingest_s3 import _Parser

    settings.AUDIT_PARSE_PROCESS_MIN_FILES = 1
    settings.AUDIT_PARSE_PROCESSES = 1
    used: list[bool] = []
    real_parse = _Parser.parse

    def spy(self: _Parser, body: bytes, fallback: dt.datetime, hashed: bool = False) -> Any:
        used.append(self.pool is not None)
        return real_parse(self, body, fallback, hashed)

    monkeypatch.setattr(_Parser, "parse", spy)
    day = days_ago(2)
    trail.deliver([r.approve("g", 1, when=day), r.describe(when=day)], day, "A" * 16)
    bad = trail.put(r.log_key(day, "B" * 16), b"\x1f\x8bnot gzip")
    trail.deliver([r.approve("g", 2, when=day)], day, "C" * 16)

    result = run(trail_source)

    assert used and all(used)
    assert result.s3.inserted == 2 and result.s3.records == 3 and result.s3.skipped_files == 1
    assert any(bad in error for error in result.s3.errors)
