"""Requesting syncs: a queued ``SyncRun`` row plus a Celery task sent after commit."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from registry_app.models import RegistrySource, SyncRun

log = logging.getLogger(__name__)

# A run still queued after this was never picked up (worker down, message lost); a running one
# past the lock lease was abandoned by a dead worker. Neither blocks a new request.
QUEUED_STALE_AFTER = dt.timedelta(minutes=15)


def request_sync(
    source: RegistrySource,
    *,
    mode: str = SyncRun.Mode.INCREMENTAL,
    trigger: str = SyncRun.Trigger.MANUAL,
) -> SyncRun:
    """Queue a sync of ``source`` and return its run.

    Transaction: one INSERT; the Celery task is sent on commit. If a run of the same mode
    for this source is already queued or running, that run is returned instead, so
    repeated "Sync now" clicks never pile up work.
    """
    from registry_app.tasks import sync_registry_task

    with transaction.atomic():
        now = timezone.now()
        active = (
            SyncRun.objects.filter(source=source, mode=mode)
            .filter(
                Q(status=SyncRun.Status.QUEUED, queued_at__gte=now - QUEUED_STALE_AFTER)
                | Q(
                    status=SyncRun.Status.RUNNING,
                    started_at__gte=now - dt.timedelta(seconds=settings.SYNC_LOCK_SECONDS),
                )
            )
            .order_by("-queued_at")
            .first()
        )
        if active is not None:
            return active
        run = SyncRun.objects.create(source=source, mode=mode, trigger=trigger)
        transaction.on_commit(lambda: _enqueue(sync_registry_task, run.pk))
    return run


def _enqueue(task: Any, run_id: int) -> None:
    """Send the task; if the broker is down, the run says so instead of sitting queued forever."""
    try:
        task.delay(run_id)
    except Exception as exc:  # noqa: BLE001 - any broker/transport failure
        log.error("could not enqueue sync run %s: %s", run_id, exc)
        SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
            status=SyncRun.Status.FAILED,
            finished_at=timezone.now(),
            error=f"Could not reach the task broker: {exc}"[:4000],
        )


def latest_runs_by_source() -> dict[int, SyncRun]:
    """The newest run of each source, in two queries whatever the number of runs."""
    newest = SyncRun.objects.filter(source=OuterRef("pk")).order_by("-queued_at", "-id").values("pk")[:1]
    run_ids = RegistrySource.objects.annotate(run_id=Subquery(newest)).values_list("run_id", flat=True)
    return {
        run.source_id: run
        for run in SyncRun.objects.filter(pk__in=[r for r in run_ids if r is not None]).select_related("source")
    }
