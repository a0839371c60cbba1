"""Runs that can no longer finish (task lost, worker dead, shards lost) are closed with a reason."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from registry_app.mirror.runs import QUEUED_STALE_AFTER, runs_close_abandoned
from registry_app.mirror.shards import shard_execute
from registry_app.models import RegistrySource, SyncRun

pytestmark = pytest.mark.django_db

LEASE = 3600


def _run(source: RegistrySource, status: str, *, age: dt.timedelta, **fields: object) -> SyncRun:
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.FULL, trigger=SyncRun.Trigger.BEAT, status=status)
    when = timezone.now() - age
    SyncRun.objects.filter(pk=run.pk).update(queued_at=when, started_at=when, **fields)
    run.refresh_from_db()
    return run


@override_settings(SYNC_LOCK_SECONDS=LEASE)
def test_lost_queued_and_dead_running_runs_are_closed_and_live_ones_kept(source: RegistrySource) -> None:
    lost = _run(source, SyncRun.Status.QUEUED, age=QUEUED_STALE_AFTER + dt.timedelta(minutes=1))
    fresh_queued = _run(source, SyncRun.Status.QUEUED, age=dt.timedelta(minutes=1))
    dead = _run(source, SyncRun.Status.RUNNING, age=dt.timedelta(seconds=LEASE + 60))
    young = _run(source, SyncRun.Status.RUNNING, age=dt.timedelta(seconds=60))
    done = _run(source, SyncRun.Status.SUCCEEDED, age=dt.timedelta(days=2))

    assert runs_close_abandoned() == 2

    statuses = {r.pk: (r.status, r.error) for r in SyncRun.objects.all()}
    assert statuses[lost.pk][0] == SyncRun.Status.FAILED and "Never started" in statuses[lost.pk][1]
    assert statuses[dead.pk][0] == SyncRun.Status.FAILED and "worker stopped" in statuses[dead.pk][1]
    assert statuses[fresh_queued.pk][0] == SyncRun.Status.QUEUED
    assert statuses[young.pk][0] == SyncRun.Status.RUNNING
    assert statuses[done.pk] == (SyncRun.Status.SUCCEEDED, "")
    assert runs_close_abandoned() == 0  # idempotent


@override_settings(SYNC_LOCK_SECONDS=LEASE)
def test_a_long_run_that_still_renews_its_lease_is_not_touched(source: RegistrySource) -> None:
    long_alive = _run(source, SyncRun.Status.RUNNING, age=dt.timedelta(seconds=3 * LEASE))
    RegistrySource.objects.filter(pk=source.pk).update(
        sync_lock_token="live", sync_locked_until=timezone.now() + dt.timedelta(seconds=600)
    )
    assert runs_close_abandoned() == 0
    long_alive.refresh_from_db()
    assert long_alive.status == SyncRun.Status.RUNNING


@override_settings(SYNC_LOCK_SECONDS=LEASE)
def test_a_sharded_run_that_lost_shards_is_closed_and_a_late_shard_does_nothing(source: RegistrySource) -> None:
    run = _run(
        source,
        SyncRun.Status.RUNNING,
        age=dt.timedelta(seconds=LEASE + 60),
        counts={"shards": 5, "shards_done": 3, "shard_ids_done": [0, 1, 2]},
    )
    assert runs_close_abandoned() == 1
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "2 of 5 shards never reported" in run.error

    class NoAws:  # a late shard must not reach AWS at all
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"AWS called: {name}")

    shard_execute(run.pk, 3, [1, 2], "old-token", client=NoAws())  # type: ignore[arg-type]
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED and run.counts["shards_done"] == 3


def test_beat_schedules_the_cleanup() -> None:
    from governance.celery import app
    from registry_app.tasks import close_abandoned_sync_runs_task

    app.finalize()
    entry = app.conf.beat_schedule["close-abandoned-sync-runs"]
    assert entry["task"] == close_abandoned_sync_runs_task.name
