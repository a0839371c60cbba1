"""Requesting syncs: a queued ``SyncRun`` row plus a Celery task sent after commit."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from registry_app.models import RegistrySource, SyncRun

# A queued/running run older than this is presumed dead (worker killed) and does not block a new request.
STALE_AFTER = dt.timedelta(hours=2)


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
        active = (
            SyncRun.objects.filter(
                source=source,
                mode=mode,
                status__in=[SyncRun.Status.QUEUED, SyncRun.Status.RUNNING],
                queued_at__gte=timezone.now() - STALE_AFTER,
            )
            .order_by("-queued_at")
            .first()
        )
        if active is not None:
            return active
        run = SyncRun.objects.create(source=source, mode=mode, trigger=trigger)
        transaction.on_commit(lambda: sync_registry_task.delay(run.pk))
    return run


def latest_runs_by_source() -> dict[int, SyncRun]:
    """The newest run of each source, in two queries whatever the number of runs."""
    newest = SyncRun.objects.filter(source=OuterRef("pk")).order_by("-queued_at", "-id").values("pk")[:1]
    run_ids = RegistrySource.objects.annotate(run_id=Subquery(newest)).values_list("run_id", flat=True)
    return {
        run.source_id: run
        for run in SyncRun.objects.filter(pk__in=[r for r in run_ids if r is not None]).select_related("source")
    }
