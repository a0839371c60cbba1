"""Requesting syncs: de-duplication, on_commit enqueue, broker failure, beat fan-out."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.utils import timezone

from registry_app.mirror.runs import request_sync
from registry_app.models import RegistrySource, SyncRun
from registry_app.tasks import poll_all_event_queues, sync_all_sources

pytestmark = pytest.mark.django_db


def test_request_sync_enqueues_on_commit_once(source, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with mock.patch("registry_app.tasks.sync_registry_task.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            first = request_sync(source, mode=SyncRun.Mode.INCREMENTAL)
            again = request_sync(source, mode=SyncRun.Mode.INCREMENTAL)
        assert first.pk == again.pk
        delay.assert_called_once_with(first.pk)
        # A different mode is a separate run.
        with django_capture_on_commit_callbacks(execute=True):
            full = request_sync(source, mode=SyncRun.Mode.FULL)
        assert full.pk != first.pk


def test_stale_queued_run_does_not_block(source, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    old = SyncRun.objects.create(source=source, mode=SyncRun.Mode.INCREMENTAL, trigger="beat")
    SyncRun.objects.filter(pk=old.pk).update(queued_at=timezone.now() - dt.timedelta(hours=1))
    with mock.patch("registry_app.tasks.sync_registry_task.delay"), django_capture_on_commit_callbacks(execute=True):
        new = request_sync(source)
    assert new.pk != old.pk


def test_broker_down_marks_run_failed(source, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    with (
        mock.patch("registry_app.tasks.sync_registry_task.delay", side_effect=ConnectionError("redis down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        run = request_sync(source)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "redis down" in run.error


def test_beat_fans_out_to_enabled_sources(source, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    RegistrySource.objects.create(name="off", region="us-east-1", enabled=False)
    RegistrySource.objects.create(
        name="q", region="us-east-1", events_queue_url="https://sqs.us-east-1.amazonaws.com/1/q"
    )
    with (
        mock.patch("registry_app.tasks.sync_registry_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert sync_all_sources(full=False) == 2
        assert poll_all_event_queues() == 1
    assert delay.call_count == 3
    assert set(SyncRun.objects.values_list("mode", flat=True)) == {"incremental", "event"}


def test_effective_celery_config() -> None:
    """Read what Celery actually uses (unknown setting names are silently ignored by Celery)."""
    from governance.celery import app

    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is False
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    app.finalize()
    schedule = conf.beat_schedule
    assert schedule["incremental-sync-all-sources"]["task"] == "registry_app.tasks.sync_all_sources"
    assert "registry_app.tasks.sync_all_sources" in app.tasks
    assert "registry_app.tasks.sync_registry" in app.tasks
    for entry in schedule.values():  # every scheduled task exists (a typo would be ignored silently)
        assert entry["task"] in app.tasks, entry
