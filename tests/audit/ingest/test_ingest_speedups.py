"""The shortcuts a million-event backfill takes must store exactly what the slow path stores."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from registry_app.audit import ingest as cloudtrail_ingest
from registry_app.audit import ingest_writer
from registry_app.audit.ingest_linker import Linker
from registry_app.audit.ingest_writer import store_records
from registry_app.models import CloudTrailEvent, RegistrySource
from tests.audit.ingest import records as r
from tests.factories import RegistrySourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def source() -> RegistrySource:
    return RegistrySourceFactory(name="prod", region=r.REGION, account_id=r.ACCOUNT)


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2025, 3, 14, 9, 1, 2, tzinfo=dt.UTC),
        dt.datetime(2025, 3, 14, 9, 1, 2, 123456, tzinfo=dt.UTC),
        dt.datetime(2025, 3, 14, 10, 1, 2, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        dt.datetime(2025, 3, 14, 9, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_sqlite_time_adapter_writes_what_django_writes(value: dt.datetime) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite insert path's adapter")
    fast = ingest_writer._sqlite_time_adapter(connection)
    assert fast(value) == connection.ops.adapt_datetimefield_value(value)


def test_stored_times_round_trip_through_the_fast_path(source: RegistrySource) -> None:
    when = dt.datetime(2025, 3, 14, 9, 1, 2, tzinfo=dt.UTC)
    recs = [r.approve("g", 1, when=when), r.approve("g", 2, when=when + dt.timedelta(seconds=1))]
    store_records(source, recs, via=CloudTrailEvent.Via.S3, linker=Linker(source), fallback_time=timezone.now())
    stored = dict(CloudTrailEvent.objects.values_list("event_id", "event_time"))
    assert stored == {recs[0]["eventID"]: when, recs[1]["eventID"]: when + dt.timedelta(seconds=1)}
    assert CloudTrailEvent.objects.filter(event_time__gt=when).count() == 1


def _has_statistics() -> bool:
    table = CloudTrailEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s", [table])
            return bool(cursor.fetchone()[0])
        cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone() is None:
            return False
        cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = %s", [table])
        return bool(cursor.fetchone()[0])


def test_a_large_ingest_refreshes_the_planner_statistics(source: RegistrySource, settings: Any) -> None:
    settings.AUDIT_ANALYZE_AFTER_ROWS = 50
    when = dt.datetime(2025, 3, 14, 9, 0, tzinfo=dt.UTC)
    recs = [r.approve(f"g{i % 5}", i, when=when + dt.timedelta(seconds=i)) for i in range(1, 61)]
    stats = store_records(source, recs, via=CloudTrailEvent.Via.S3, linker=Linker(source), fallback_time=when)
    assert not _has_statistics()

    cloudtrail_ingest.analyze_events_table(stats.inserted - 20)  # a run below the threshold: left alone
    assert not _has_statistics()

    cloudtrail_ingest.analyze_events_table(stats.inserted)
    assert _has_statistics()


def test_raw_is_stored_as_text_and_read_back_as_the_record(source: RegistrySource) -> None:
    from django.core.exceptions import FieldError

    rec = r.approve("g", 1)
    store_records(source, [rec], via=CloudTrailEvent.Via.S3, linker=Linker(source), fallback_time=timezone.now())
    event = CloudTrailEvent.objects.get(event_id=rec["eventID"])
    assert event.raw == rec

    edited = dict(rec, eventName="UpdateModelPackage", extra={"nested": [1, "two", None]})
    CloudTrailEvent.objects.filter(pk=event.pk).update(raw=edited)
    event.refresh_from_db()
    assert event.raw == edited
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT raw FROM {CloudTrailEvent._meta.db_table} WHERE id = %s", [event.pk])
        (text,) = cursor.fetchone()
    assert isinstance(text, str) and json.loads(text) == edited  # plain JSON text, as the record came
    assert CloudTrailEvent.objects.filter(raw__isnull=False).count() == 1
    with pytest.raises(FieldError):
        list(CloudTrailEvent.objects.filter(raw__eventName="UpdateModelPackage"))
