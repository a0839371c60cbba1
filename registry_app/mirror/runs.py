"""``SyncRun`` rows: requesting a sync (a queued row plus a Celery task sent after commit), recording
a run's outcome, and closing runs that can no longer finish."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from registry_app.mirror import mapping as sync
from registry_app.models import RegistrySource, SyncRun

log = logging.getLogger(__name__)

# A run still queued after this was never picked up (worker down, message lost); a running one
# past the lock lease was abandoned by a dead worker. Neither blocks a new request.
QUEUED_STALE_AFTER = dt.timedelta(minutes=5)


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


def runs_close_abandoned(now: dt.datetime | None = None) -> int:
    """Mark runs that can no longer finish as failed, saying why; returns how many.

    - queued for longer than ``QUEUED_STALE_AFTER``: the task was lost (broker restarted without
      persistence, worker gone). If it is delivered after all, its claim (a conditional UPDATE
      from "queued") finds nothing to do.
    - running, started longer ago than the lease, on a source whose lease has lapsed: the worker
      died, or a sharded full reconciliation lost shard tasks. A sync that is still alive renews
      the lease, so it is never touched; a shard delivered later finds the run closed and stops.

    Nothing is lost by closing a run: the next incremental sync (a minute later) and the nightly
    full reconciliation redo its work.
    """
    now = now or timezone.now()
    closed = SyncRun.objects.filter(status=SyncRun.Status.QUEUED, queued_at__lt=now - QUEUED_STALE_AFTER).update(
        status=SyncRun.Status.FAILED,
        finished_at=now,
        progress="",
        error="Never started: its task was lost (worker or broker down); the next scheduled sync redoes it.",
    )
    lapsed = Q(source__sync_locked_until__isnull=True) | Q(source__sync_locked_until__lt=now)
    abandoned = SyncRun.objects.filter(
        lapsed,
        status=SyncRun.Status.RUNNING,
        started_at__lt=now - dt.timedelta(seconds=settings.SYNC_LOCK_SECONDS),
    )
    for run in abandoned.only("pk", "counts"):
        counts = run.counts or {}
        total = int(counts.get("shards") or 0)
        why = (
            f"Abandoned: {total - int(counts.get(sync.SHARDS_DONE) or 0)} of {total} shards never reported"
            if total
            else "Abandoned: its worker stopped before finishing"
        )
        closed += SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).update(
            status=SyncRun.Status.FAILED,
            finished_at=now,
            progress="",
            error=f"{why} (lease lapsed); the next scheduled sync redoes its work.",
        )
    if closed:
        log.warning("closed %d abandoned sync run(s)", closed)
    return closed


def run_elapsed(run: SyncRun) -> float | None:
    """Seconds since the run started (a sharded run's duration spans all its steps)."""
    return round((timezone.now() - run.started_at).total_seconds(), 3) if run.started_at else None


def run_finish(run: SyncRun, status: str, *, error: str = "") -> None:
    """Record a run's outcome with what the caller set on it (durations, AWS calls, counts, errors)."""
    run.status = status
    run.error = error[:4000]
    run.finished_at = timezone.now()
    run.progress = ""
    run.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "progress",
            "duration_s",
            "aws_seconds",
            "aws_calls",
            "counts",
            "errors",
        ]
    )
