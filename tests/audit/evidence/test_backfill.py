"""The whole trail by default: the first S3 pass reads from yesterday on, the background backfill reads
the older history newest first in resumable slices (its own lease), digests included; the as-of
answer refuses a time before the covered range; AUDIT_S3_INITIAL_DAYS opts out."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registry_app.audit.as_of import as_of
from registry_app.audit.backfill import Backfill, backfill_source, sources_to_backfill
from registry_app.audit.coverage import source_coverage
from registry_app.audit.ingest_run import acquire_audit_lock, release_audit_lock
from registry_app.audit.validation import event_validation
from registry_app.models import CloudTrailEvent, RegistrySource, TrailLogFile
from tests.audit.evidence.conftest import hours_ago, ingest
from tests.audit.evidence.signed_trail import SignedTrail
from tests.audit.ingest import records as r

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


def days_ago(days: int) -> dt.datetime:
    return hours_ago(0).replace(hour=10, minute=5) - dt.timedelta(days=days)


def deliver_day(signed: SignedTrail, days: int, *records: dict[str, Any]) -> str:
    """One log file at 10:05 that day (its records at 10:00) and the digest of that hour."""
    at = days_ago(days)
    key = signed.deliver(
        list(records) or [r.approve("credit-risk", days + 1, when=at - 5 * dt.timedelta(minutes=1))], at, "D" * 16
    )
    signed.digest(at + HOUR - dt.timedelta(minutes=4), start=at - dt.timedelta(minutes=4))
    return key


@pytest.fixture
def history(source: RegistrySource, signed: SignedTrail) -> dict[int, str]:
    """Files on days 9, 6 and 3 ago (history) and today (the forward pass's)."""
    return {days: deliver_day(signed, days) for days in (9, 6, 3, 0)}


def stored_days() -> set[int]:
    today = hours_ago(0).date()
    return {(today - e.event_time.date()).days for e in CloudTrailEvent.objects.all()}


def test_the_first_pass_reads_from_yesterday_and_the_backfill_reads_the_rest_newest_first(
    source: RegistrySource, history: dict[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(source)
    assert stored_days() == {0}
    assert sources_to_backfill() == [source.pk]
    read: list[str] = []
    real = Backfill._fetch

    def spy(self: Backfill, key: str, parser: Any) -> Any:
        read.append(key)
        return real(self, key, parser)

    monkeypatch.setattr(Backfill, "_fetch", spy)

    result = backfill_source(source, max_seconds=600)

    assert result.done and not result.more and result.s3.inserted == 3
    assert read == [history[3], history[6], history[9]]  # newest day first
    assert stored_days() == {0, 3, 6, 9}
    # The history's files were checked against their digests too.
    assert set(TrailLogFile.objects.values_list("state", flat=True)) == {"validated"}
    assert {event_validation(e).state for e in CloudTrailEvent.objects.select_related("trail_file")} == {"validated"}
    coverage = source_coverage(source)
    (progress,) = coverage.backfill
    assert progress.done and progress.days_done == progress.days_total == 8 and progress.events == 3
    assert coverage.trail_from == days_ago(9).date() and coverage.backfill_done
    assert sources_to_backfill() == []
    assert backfill_source(source).s3.pages == 0  # nothing left: no file is read again


def test_slices_stop_on_their_budget_and_resume_where_they_stopped(
    source: RegistrySource, history: dict[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(source)
    budget = {"checks": 0}

    def out_of_time(self: Backfill) -> bool:
        budget["checks"] += 1
        return budget["checks"] % 2 == 0  # every slice runs out after a file or two

    monkeypatch.setattr(Backfill, "out_of_time", out_of_time)
    slices = []
    while True:
        result = backfill_source(source, max_seconds=1)
        slices.append(result)
        if not result.more:
            break
        assert not source_coverage(source).backfill_done
        (progress,) = source_coverage(source).backfill
        assert progress.eta_seconds is None or progress.eta_seconds >= 0

    assert len(slices) > 2 and slices[-1].done
    assert sum(s.s3.inserted for s in slices) == 3 and sum(s.s3.duplicates for s in slices) == 0
    assert stored_days() == {0, 3, 6, 9}


def test_the_backfill_has_its_own_lease_so_the_five_minute_ingest_never_waits(
    source: RegistrySource, history: dict[int, str]
) -> None:
    ingest(source)
    forward = acquire_audit_lock(source)  # a forward ingest is running
    assert forward is not None
    try:
        assert backfill_source(source).done
    finally:
        release_audit_lock(source, forward)
    from registry_app.audit.ingest_run import BACKFILL_LOCK_KIND

    slice_lease = acquire_audit_lock(source, kind=BACKFILL_LOCK_KIND)  # a slice is running
    try:
        assert not ingest(source).skipped
        assert backfill_source(source).skipped  # one slice at a time
    finally:
        release_audit_lock(source, slice_lease, kind=BACKFILL_LOCK_KIND)  # type: ignore[arg-type]


def test_the_as_of_answer_says_when_the_time_is_before_the_covered_range(
    source: RegistrySource, signed: SignedTrail
) -> None:
    created = days_ago(5)
    deliver_day(
        signed,
        5,
        r.create_model("m-1", r.arn_package("credit-risk", 3), when=created),
        r.create_config("cfg-1", [("AllTraffic", "m-1", 1.0)], when=created),
        r.endpoint_call("CreateEndpoint", "fraud-ep", "cfg-1", when=created),
    )
    deliver_day(signed, 0)
    ingest(source)
    asked = days_ago(4)

    before = as_of("fraud-ep", asked)

    assert before.before_coverage and not before.variants
    assert "is before the CloudTrail evidence covers" in before.summary
    assert any(
        "backfill of older history is in progress" in line or "has not started" in line for line in before.missing
    )
    assert before.as_dict()["before_covered_range"] is True

    assert backfill_source(source).done
    after = as_of("fraud-ep", asked)
    assert not after.before_coverage and after.variants
    assert after.variants[0].deployment.endpoint_name == "fraud-ep"
    refs = [e for e in after.summary_evidence if e.ref.startswith("cloudtrail:")]
    assert refs and all(e.validation == "validated" for e in refs)


def test_initial_days_opts_out_of_the_backfill(source: RegistrySource, signed: SignedTrail, settings: Any) -> None:
    settings.AUDIT_S3_INITIAL_DAYS = 7
    for days in (9, 6, 0):
        deliver_day(signed, days)

    ingest(source)

    assert stored_days() == {0, 6}
    assert sources_to_backfill() == []
    result = backfill_source(source)
    assert not result.done and "opt-out" in result.note
    assert "AUDIT_S3_INITIAL_DAYS is set" in source_coverage(source).describe()


def test_the_task_enqueues_the_next_slice_while_history_is_left(
    source: RegistrySource, history: dict[int, str], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from registry_app import tasks

    ingest(source)
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        tasks.backfill_audit_task, "apply_async", lambda args, countdown: sent.append((args, countdown))
    )
    monkeypatch.setattr(Backfill, "out_of_time", lambda self: True)

    assert tasks.backfill_audit_task(source.pk)["more"] == 1
    assert sent == [((source.pk,), settings.AUDIT_BACKFILL_PAUSE_SECONDS)]

    monkeypatch.undo()
    monkeypatch.setattr(
        tasks.backfill_audit_task, "apply_async", lambda args, countdown: sent.append((args, countdown))
    )
    assert tasks.backfill_audit_task(source.pk)["more"] == 0
    assert len(sent) == 1
    enqueued: list[int] = []
    monkeypatch.setattr(tasks.backfill_audit_task, "delay", enqueued.append)
    assert tasks.backfill_audit_all_task() == 0 and enqueued == []
