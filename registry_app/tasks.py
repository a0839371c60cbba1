"""Thin Celery entry points. Tasks take ids, re-read state, and call services."""

from __future__ import annotations

import logging

from celery import shared_task

from registry_app.models import RegistrySource, SyncRun

log = logging.getLogger(__name__)


@shared_task(name="registry_app.tasks.sync_registry", ignore_result=True)
def sync_registry_task(run_id: int) -> None:
    """Execute one queued SyncRun (claimed by a conditional UPDATE, so a redelivery is a no-op)."""
    from registry_app.services.registry_sync import execute_run

    execute_run(run_id, task_id=sync_registry_task.request.id or "")


def _request_for_all(mode: str, *, only_with_queue: bool = False) -> int:
    from registry_app.services.sync_runs import request_sync

    sources = RegistrySource.objects.filter(enabled=True)
    if only_with_queue:
        sources = sources.exclude(events_queue_url="")
    n = 0
    for source in sources:
        request_sync(source, mode=mode, trigger=SyncRun.Trigger.BEAT if mode != SyncRun.Mode.EVENT else "event")
        n += 1
    return n


@shared_task(name="registry_app.tasks.sync_all_sources", ignore_result=True)
def sync_all_sources(full: bool = False) -> int:
    """Beat: an incremental sync of every enabled source each minute, a full one nightly."""
    return _request_for_all(SyncRun.Mode.FULL if full else SyncRun.Mode.INCREMENTAL)


@shared_task(name="registry_app.tasks.sync_all_endpoints", ignore_result=True)
def sync_all_endpoints() -> int:
    """Beat: model cards and endpoints (ListModelCards / ListEndpoints, describing only changes)."""
    return _request_for_all(SyncRun.Mode.ENDPOINTS)


@shared_task(name="registry_app.tasks.poll_all_event_queues", ignore_result=True)
def poll_all_event_queues() -> int:
    """Beat: drain each source's EventBridge → SQS queue, refreshing the packages named."""
    return _request_for_all(SyncRun.Mode.EVENT, only_with_queue=True)
