"""Thin Celery entry points. Tasks take ids, re-read state, and call services."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from registry_app.models import RegistrySource, SyncRun

log = logging.getLogger(__name__)


@shared_task(name="registry_app.tasks.sync_registry", ignore_result=True)
def sync_registry_task(run_id: int) -> None:
    """Execute one queued SyncRun (claimed by a conditional UPDATE, so a redelivery is a no-op)."""
    from registry_app.mirror.execute import execute_run

    execute_run(run_id, task_id=sync_registry_task.request.id or "", fan_out=True)


@shared_task(name="registry_app.tasks.sync_shard", ignore_result=True, acks_late=True)
def sync_shard_task(run_id: int, shard: int, group_ids: list[int], lock_token: str) -> None:
    """One shard of a full reconciliation: these groups' packages; the last shard finalises the run.

    ``acks_late``: a worker that dies mid-shard leaves the message to be redelivered, and running a
    shard twice is harmless (change-detected writes; the run counts each shard once).
    """
    from registry_app.mirror.shards import shard_execute

    shard_execute(run_id, shard, group_ids, lock_token)


@shared_task(name="registry_app.tasks.close_abandoned_sync_runs", ignore_result=True)
def close_abandoned_sync_runs_task() -> int:
    """Beat (every 10 minutes): runs whose task was lost or whose worker died are closed as failed."""
    from registry_app.mirror.runs import runs_close_abandoned

    return runs_close_abandoned()


def _request_for_all(mode: str, *, only_with_queue: bool = False) -> int:
    from registry_app.mirror.runs import request_sync

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


# --- notifications ---------------------------------------------------------------------------
# The notification outbox (registry_app.notifications): rows are written with the event; these tasks
# send what is due. No Celery retry: each row records its own failure and backoff, and the beat sweep
# sends again what is pending (so a lost task, a dead worker or a broker outage loses nothing).

NOTIFY_TASK_SECONDS = 240.0  # a kick or a sweep sends for at most this long; the next sweep goes on


def _send_due() -> int:
    from registry_app.notifications.sender import notifications_send_due

    report = notifications_send_due(max_seconds=NOTIFY_TASK_SECONDS)
    if report.errors:
        log.warning("notifications: %d failed, %d retrying: %s", report.failed, report.retrying, report.errors[:3])
    return report.sent


def _ensure(kind: str, package_id: int | None, key: str, write: Any) -> None:
    """The rows are written with the event; a task queued by an older release (or by hand) writes them here."""
    from registry_app.models import Notification

    rows = Notification.objects.filter(kind__in=kind.split(","), key=key)
    if package_id is not None:
        rows = rows.filter(package_id=package_id)
    if not rows.exists():
        write()


@shared_task(name="registry_app.tasks.notify_review_requested", ignore_result=True)
def notify_review_requested_task(package_id: int) -> int:
    """A package became pending: send the review requests that are due (rows written by the sync)."""
    from registry_app.notifications.emails import notify_review_requested

    _ensure("review_requested", package_id, "", lambda: notify_review_requested(package_id))
    return _send_due()


@shared_task(name="registry_app.tasks.notify_decided", ignore_result=True)
def notify_decided_task(decision_id: int) -> int:
    """A Decision was recorded: send what is due (its rows were written with it)."""
    from registry_app.notifications.emails import notify_decided

    _ensure("decided,revoked", None, f"decision:{decision_id}", lambda: notify_decided(decision_id))
    return _send_due()


@shared_task(name="registry_app.tasks.notify_conflict", ignore_result=True)
def notify_conflict_task(push_id: str) -> int:
    """A push conflicted: send what is due (its rows were written with the conflict)."""
    from registry_app.notifications.emails import notify_conflict

    _ensure("conflict", None, f"push:{push_id}", lambda: notify_conflict(push_id))
    return _send_due()


@shared_task(name="registry_app.tasks.send_sla_reminders", ignore_result=True)
def send_sla_reminders_task() -> int:
    """Beat (hourly): remind reviewers of packages past their review SLA (one per day at most), then send."""
    from registry_app.notifications.emails import send_sla_reminders
    from registry_app.notifications.finding_mails import send_finding_reminders

    send_sla_reminders()
    send_finding_reminders()
    return _send_due()


@shared_task(name="registry_app.tasks.send_revalidation_reminders", ignore_result=True)
def send_revalidation_reminders_task() -> int:
    """Beat (daily): remind who may sign of versions due or overdue for revalidation (once per due date), then send."""
    from registry_app.notifications.revalidation import send_revalidation_reminders

    send_revalidation_reminders()
    return _send_due()


@shared_task(name="registry_app.tasks.sweep_notifications", ignore_result=True)
def sweep_notifications_task() -> int:
    """Beat (every NOTIFY_SWEEP_SECONDS): send what is due: collected batches and digests, retries after
    their backoff, rows whose kick was lost (broker down at commit) or whose worker died mid-send."""
    return _send_due()


# --- end notifications -----------------------------------------------------------------------


# --- push outbox -----------------------------------------------------------------------------
# UpdateModelPackage pushes (registry_app.review.push). A delivery claims its row with a
# conditional UPDATE, so duplicates and redeliveries are harmless. Only retryable AWS errors
# (and "an earlier push of this package is still on its way") are retried, with exponential
# backoff and jitter: 5 s, 10 s, ... capped at 10 min, 8 times (about half an hour in all, far
# under Redis's 4 h visibility timeout). After that the row stays pending and the beat below
# sends it again.

from celery import Task  # noqa: E402  (section-local imports, like the section above)
from django.db import InterfaceError, OperationalError  # noqa: E402

from registry_app.aws.errors import RetryableAwsError  # noqa: E402


@shared_task(
    name="registry_app.tasks.push",
    bind=True,
    # A dropped database connection is as transient as a throttled AWS call (push_execute put the row back).
    autoretry_for=(RetryableAwsError, OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
    ignore_result=True,
)
def push_task(self: Task, push_id: str) -> str:
    """Deliver one PushOutbox row; returns its final state."""
    from registry_app.review.push import PushBlocked, push_execute

    try:
        return str(push_execute(push_id).state)
    except PushBlocked as exc:
        # Not an AWS failure: wait for the earlier push of the same package (it re-kicks us when sent).
        raise self.retry(exc=exc, countdown=min(600, 5 * 2 ** min(self.request.retries, 7))) from exc


@shared_task(
    name="registry_app.tasks.refresh_package",
    autoretry_for=(RetryableAwsError, OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    ignore_result=True,
)
def refresh_package_task(package_id: int) -> None:
    """Describe one package and apply it to the mirror (enqueued by a push once it is recorded)."""
    from registry_app.mirror.reconcile import package_refresh

    package_refresh(package_id)


@shared_task(name="registry_app.tasks.resend_stuck_pushes", ignore_result=True)
def resend_stuck_pushes_task() -> int:
    """Beat (every 2 minutes): re-send pushes whose task was lost or whose worker died mid-push."""
    from registry_app.review.push import pushes_resend_stuck

    return pushes_resend_stuck()


# --- end push outbox -------------------------------------------------------------------------


# --- audit ingest ----------------------------------------------------------------------------
# CloudTrail ingest (registry_app.audit.ingest): every 5 minutes one task per enabled
# source. Each holds the source's *audit* lock (not the registry-sync lock, so a long LookupEvents
# backfill at 2 TPS never delays the minute-by-minute registry sync) and stops cleanly after a time
# budget: its cursor is committed page by page, so the next run resumes where it stopped. No task
# retries: throttling is waited out inside, and the next beat picks up whatever is left.


@shared_task(name="registry_app.tasks.ingest_audit", ignore_result=True)
def ingest_audit_task(source_id: int) -> dict[str, int]:
    """Ingest one source's CloudTrail events (LookupEvents, then S3) and rebuild touched deployments."""
    from django.conf import settings

    from registry_app.audit.ingest import ingest_source

    source = RegistrySource.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return {}
    result = ingest_source(
        source,
        max_seconds=float(getattr(settings, "AUDIT_TASK_MAX_SECONDS", 1200)),
        respect_backoff=True,
    )
    for line in result.lines():
        log.info("audit ingest: %s", line)
    from registry_app.audit.alerts import alert_evidence_failures

    alert_evidence_failures()  # trail files or digests that failed validation: staff are e-mailed
    return {"inserted": result.inserted, "errors": len(result.errors), "skipped": int(result.skipped)}


@shared_task(name="registry_app.tasks.ingest_audit_all", ignore_result=True)
def ingest_audit_all_task() -> int:
    """Beat (every 5 minutes): one ingest task per enabled source."""
    n = 0
    for source_id in RegistrySource.objects.filter(enabled=True).values_list("pk", flat=True):
        ingest_audit_task.delay(source_id)
        n += 1
    return n


# --- end audit ingest ------------------------------------------------------------------------


# --- outside decisions ------------------------------------------------------------------------
@shared_task(name="registry_app.tasks.notify_outside_decisions", ignore_result=True)
def notify_outside_decisions_task() -> int:
    """Beat (every 10 minutes): resend compliance emails about outside decisions that failed to send."""
    from registry_app.audit.outside_decisions import outside_decisions_notify_pending

    return outside_decisions_notify_pending()


# --- review state -----------------------------------------------------------------------------
@shared_task(name="registry_app.tasks.verify_review_state", ignore_result=True)
def verify_review_state_task() -> int:
    """Beat (nightly): re-derive every stored review-state row, record and fix any difference
    (``review.queue_state.review_state_verify``; /metrics shows the count). Returns it."""
    from registry_app.review.queue_state import review_state_verify

    return review_state_verify(fix=True).differences


# --- audit evidence --------------------------------------------------------------------------
# The audit chain's head anchored outside the database (hourly) and verified against it (daily);
# the trail's history backfilled newest first in time-budgeted slices, each re-enqueueing the next
# (the beat restarts a chain that was lost). All on the audit queue; none retries: the next run does.


@shared_task(name="registry_app.tasks.anchor_audit", ignore_result=True)
def anchor_audit_task() -> int | None:
    """Beat (hourly): write the audit chain's head to the anchor store (registry_app.audit.anchors)."""
    from registry_app.audit.anchors import anchor_head

    return anchor_head().seq


@shared_task(name="registry_app.tasks.verify_audit", ignore_result=True)
def verify_audit_task() -> bool:
    """Beat (daily): verify the chain against the latest anchor; staff are e-mailed on a failure."""
    from registry_app.audit.alerts import alert_evidence_failures
    from registry_app.audit.verification import verify_audit

    ok = verify_audit(trigger="schedule").ok
    alert_evidence_failures()  # CloudTrail failures whose alert could not be sent before
    return ok


@shared_task(name="registry_app.tasks.backfill_audit", ignore_result=True)
def backfill_audit_task(source_id: int) -> dict[str, int]:
    """One slice of a source's trail history; enqueues the next slice while there is more to read."""
    from django.conf import settings

    from registry_app.audit.alerts import alert_evidence_failures
    from registry_app.audit.backfill import backfill_source

    source = RegistrySource.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return {}
    result = backfill_source(source, max_seconds=float(settings.AUDIT_BACKFILL_SLICE_SECONDS))
    log.info("audit backfill: %s", result.line())
    alert_evidence_failures()
    if result.more and not result.skipped:
        backfill_audit_task.apply_async((source_id,), countdown=int(settings.AUDIT_BACKFILL_PAUSE_SECONDS))
    return {"inserted": result.s3.inserted, "days": result.days, "more": int(result.more)}


@shared_task(name="registry_app.tasks.backfill_audit_all", ignore_result=True)
def backfill_audit_all_task() -> int:
    """Beat (every 10 minutes): start (or restart) the backfill of each source that has history left."""
    from registry_app.audit.backfill import sources_to_backfill

    ids = sources_to_backfill()
    for source_id in ids:
        backfill_audit_task.delay(source_id)
    return len(ids)


# --- end audit evidence ----------------------------------------------------------------------
