"""``sync_audit`` and the beat task: both passes, printed counts, fan-out, LookupEvents failures backed off."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from registry_app.audit.ingest_run import cursor_positions
from registry_app.models import AuditCursor, CloudTrailEvent, RegistrySource
from tests.audit.ingest import records as r
from tests.audit.ingest.conftest import Trail, days_ago

pytestmark = pytest.mark.django_db


def test_sync_audit_s3_only_prints_counts(trail_source: RegistrySource, trail: Trail, capsys: Any) -> None:
    day = days_ago(2)
    trail.deliver([r.create_group("g", when=day), r.approve("g", 1, when=day), r.describe(when=day)], day)

    call_command("sync_audit", "--only", "s3")

    out = capsys.readouterr().out
    assert "prod: 2 new CloudTrail events" in out
    assert "s3: 1 files, 3 records, 2 relevant, 2 new, 0 already stored" in out
    assert "lookup: not run" in out
    assert "calls.GetObject: 1" in out
    assert CloudTrailEvent.objects.count() == 2


def test_sync_audit_since_backfills_older_files(trail_source: RegistrySource, trail: Trail, capsys: Any) -> None:
    old = days_ago(150)
    trail.deliver([r.approve("g", 1, when=old)], old)
    call_command("sync_audit", "--only", "s3")
    assert CloudTrailEvent.objects.count() == 0
    call_command(
        "sync_audit", "--only", "s3", "--source", "prod", "--since", (old - dt.timedelta(days=1)).date().isoformat()
    )
    assert CloudTrailEvent.objects.count() == 1


def test_sync_audit_runs_both_passes_and_reports_lookup_errors(
    trail_source: RegistrySource, trail: Trail, capsys: Any
) -> None:
    """moto has no LookupEvents: the error is reported, the S3 pass still runs."""
    day = days_ago(1)
    trail.deliver([r.approve("g", 1, when=day)], day)
    call_command("sync_audit")
    out = capsys.readouterr().out
    assert "error: LookupEvents" in out
    assert "s3: 1 files" in out and CloudTrailEvent.objects.count() == 1


def test_sync_audit_argument_errors(trail_source: RegistrySource) -> None:
    with pytest.raises(CommandError, match="no registry source named"):
        call_command("sync_audit", "--source", "nope")
    with pytest.raises(CommandError, match="--since takes a date"):
        call_command("sync_audit", "--since", "last tuesday")


def test_sync_audit_fails_when_a_source_is_locked(trail_source: RegistrySource, trail: Trail) -> None:
    from registry_app.audit.ingest_run import acquire_audit_lock

    assert acquire_audit_lock(trail_source)
    with pytest.raises(CommandError, match="holds its lock"):
        call_command("sync_audit", "--only", "s3")


def test_beat_fans_out_one_task_per_enabled_source(trail_source: RegistrySource, monkeypatch: Any) -> None:
    from registry_app import tasks
    from tests.factories import RegistrySourceFactory

    RegistrySourceFactory(name="disabled", enabled=False)
    queued: list[int] = []
    monkeypatch.setattr(tasks.ingest_audit_task, "delay", lambda source_id: queued.append(source_id))
    assert tasks.ingest_audit_all_task() == 1
    assert queued == [trail_source.pk]


def test_task_ingests_and_backs_off_lookup_failures(trail_source: RegistrySource, trail: Trail, settings: Any) -> None:
    from registry_app.tasks import ingest_audit_task

    settings.AWS_MAX_ATTEMPTS = 1
    day = days_ago(1)
    trail.deliver([r.approve("g", 1, when=day)], day)

    first = ingest_audit_task(trail_source.pk)

    assert first["inserted"] == 1 and first["errors"] >= 1
    position = cursor_positions(trail_source)[AuditCursor.Kind.LOOKUP]
    assert position["failures"] == 1 and position["retry_after"]
    second = ingest_audit_task(trail_source.pk)  # within the back-off: LookupEvents is not called again
    assert second == {"inserted": 0, "errors": 0, "skipped": 0}
    assert ingest_audit_task(999_999) == {}


def test_beat_schedule_has_the_audit_ingest() -> None:
    from governance.celery import app

    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["audit-ingest"]
    assert entry["task"] == "registry_app.tasks.ingest_audit_all" and entry["schedule"] == 300.0
    assert "registry_app.tasks.ingest_audit" in app.tasks
