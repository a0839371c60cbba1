"""The Celery application: ``celery -A governance worker`` / ``celery -A governance beat``."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")

app = Celery("governance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
import registry_app.ops.celery_signals  # noqa: E402, F401 - task log context and task events

# The embedded SQLite broker (``sqla+sqlite``, the demo's) is polled, once a second by default: a
# final sign-off then took ~3.8 s to reach the registry (its flags push, then the decision push that
# push unblocks, each waited for a poll). A tenth of a second costs the demo's SQLite file a few
# cheap SELECTs per second per queue. Not a transport option: kombu's sqlalchemy transport hands its
# options to ``create_engine``, which refuses ``polling_interval``. Redis pushes messages; untouched.
SQLITE_BROKER_POLL_SECONDS = 0.1


@app.on_after_configure.connect
def _poll_the_embedded_broker_often(sender: Celery, **_: object) -> None:
    if str(sender.conf.broker_url or "").startswith("sqla+"):
        from kombu.transport import sqlalchemy

        sqlalchemy.Transport.polling_interval = SQLITE_BROKER_POLL_SECONDS


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **_: object) -> None:
    from django.conf import settings

    sender.conf.beat_schedule = {
        "incremental-sync-all-sources": {
            "task": "registry_app.tasks.sync_all_sources",
            "schedule": float(settings.SYNC_INTERVAL_SECONDS),
            "kwargs": {"full": False},
        },
        "nightly-full-reconciliation": {
            "task": "registry_app.tasks.sync_all_sources",
            "schedule": crontab(minute=17, hour=settings.FULL_SYNC_HOUR_UTC),
            "kwargs": {"full": True},
        },
        "endpoint-sync": {
            "task": "registry_app.tasks.sync_all_endpoints",
            "schedule": float(settings.ENDPOINT_SYNC_INTERVAL_SECONDS),
        },
        "poll-registry-events": {
            "task": "registry_app.tasks.poll_all_event_queues",
            "schedule": float(settings.EVENTS_POLL_INTERVAL_SECONDS),
        },
        "close-abandoned-sync-runs": {
            "task": "registry_app.tasks.close_abandoned_sync_runs",
            "schedule": 600.0,  # lost tasks, dead workers, lost shards; see services/sync_runs.py
        },
        "resend-stuck-pushes": {
            "task": "registry_app.tasks.resend_stuck_pushes",
            "schedule": 120.0,  # pushes lost with a worker or the broker; see services/push.py
        },
        "audit-ingest": {
            "task": "registry_app.tasks.ingest_audit_all",
            "schedule": 300.0,  # CloudTrail: LookupEvents + trail S3 files; see services/cloudtrail_ingest.py
        },
        "audit-anchor": {
            "task": "registry_app.tasks.anchor_audit",
            "schedule": float(settings.AUDIT_ANCHOR_INTERVAL_SECONDS),  # the chain's head, outside the database
        },
        "audit-verify": {
            "task": "registry_app.tasks.verify_audit",
            "schedule": crontab(minute=41, hour=settings.AUDIT_VERIFY_HOUR_UTC),  # daily; e-mails staff on failure
        },
        "audit-backfill": {
            "task": "registry_app.tasks.backfill_audit_all",
            "schedule": 600.0,  # restarts trail-history backfills; each slice enqueues the next
        },
        "sweep-notifications": {
            "task": "registry_app.tasks.sweep_notifications",
            "schedule": float(settings.NOTIFY_SWEEP_SECONDS),  # the outbox: due batches, retries, lost workers
        },
        "sla-reminders": {
            "task": "registry_app.tasks.send_sla_reminders",
            "schedule": crontab(minute=7),  # hourly; the Notification key limits it to one per day
        },
        "revalidation-reminders": {
            "task": "registry_app.tasks.send_revalidation_reminders",
            "schedule": crontab(minute=17, hour=6),  # daily; the Notification key (the due date) makes it idempotent
        },
        "verify-review-state": {
            "task": "registry_app.tasks.verify_review_state",
            "schedule": crontab(minute=47, hour=settings.FULL_SYNC_HOUR_UTC),  # after the nightly reconciliation
        },
        "outside-decision-emails": {
            "task": "registry_app.tasks.notify_outside_decisions",
            "schedule": 600.0,  # resend compliance emails that failed; see services/bypasses.py
        },
    }
