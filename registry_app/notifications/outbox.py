"""Writing the notification outbox: an event's rows, in the transaction of the event itself.

* ``outbox_add`` writes one ``Notification`` row per recipient and per matching webhook endpoint, inside a
  savepoint of the caller's transaction: the rows commit with the sign-off, decision, conflict or synced
  package that caused them, or not at all, and a broker that is down at that moment loses nothing (the
  beat sweep sends what is pending). ``bulk_create(ignore_conflicts=True)`` on the unique keys makes a
  repeat (a re-sync, a redelivered task) write nothing. ``enqueue`` runs each event in a savepoint and
  logs a failure: a notification problem must not stop a decision or a sync.
* When each row may go (``deliver_after``): now; review requests after ``NOTIFY_BATCH_SECONDS``, so the
  packages that become pending within a few minutes reach a person (or a Slack / Teams channel) as one
  message; kinds a person takes in the daily digest at the next ``NOTIFY_DIGEST_HOUR_UTC``. During the
  first sync of a source (no sync of it has succeeded yet) every new review request pushes the person's
  collected ones back by another window, so that sync sends one digest per reviewer however long it
  takes, bounded by ``NOTIFY_FIRST_SYNC_MAX_HOLD_SECONDS``. Generic webhooks (machines) get each event now.
* ``outbox_retry_failed``: staff send the failed rows again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from registry_app.models import ModelPackage, Notification, NotificationKind, SyncRun, WebhookEndpoint

__all__ = ["Added", "Event", "next_digest_at", "outbox_add", "outbox_retry_failed", "source_never_synced"]

log = logging.getLogger(__name__)

# Kinds collected for NOTIFY_BATCH_SECONDS before they go (the flood is review requests).
BATCHED_KINDS = frozenset({NotificationKind.REVIEW_REQUESTED})
DAILY = "daily"


@dataclass(frozen=True)
class Event:
    """Something to tell: ``key`` tells repeats of a kind apart (``decision:<id>``, ``push:<id>``, ``sla:<n>``);
    ``facts`` (JSON) is what the messages say, as it was when it happened."""

    kind: str
    package: ModelPackage
    key: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Added:
    rows: int = 0
    due_now: bool = False


def next_digest_at(now: dt.datetime) -> dt.datetime:
    """The next ``NOTIFY_DIGEST_HOUR_UTC``:00 UTC after ``now``."""
    at = now.astimezone(dt.UTC).replace(hour=settings.NOTIFY_DIGEST_HOUR_UTC % 24, minute=0, second=0, microsecond=0)
    return at if at > now else at + dt.timedelta(days=1)


def source_never_synced(source_id: int) -> bool:
    """No sync of the source has succeeded yet: what it finds now was there before the dashboard watched."""
    done = (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)
    return not SyncRun.objects.filter(source_id=source_id, status__in=done).exists()


def _when(kind: str, *, daily: bool, now: dt.datetime) -> dt.datetime:
    if daily:
        return next_digest_at(now)
    if kind in BATCHED_KINDS:
        return now + dt.timedelta(seconds=max(0, settings.NOTIFY_BATCH_SECONDS))
    return now


def outbox_add(
    event: Event,
    *,
    recipients: Sequence[tuple[Any, str]],
    webhooks: Sequence[WebhookEndpoint] = (),
    first_sync: bool = False,
    now: dt.datetime | None = None,
) -> Added:
    """Write ``event``'s rows: one per (user, mode) of ``recipients`` and per endpoint of ``webhooks``.

    Transaction: atomic inside the caller's (one INSERT, plus one UPDATE during a first sync); nothing is
    sent here. Returns how many rows were offered and whether one may go now (the caller kicks the
    sender after commit).
    """
    now = now or timezone.now()
    facts = dict(event.facts)
    rows = [
        Notification(
            package=event.package,
            kind=event.kind,
            recipient=user,
            key=event.key,
            payload=facts,
            created_at=now,
            digest=mode == DAILY,
            deliver_after=_when(event.kind, daily=mode == DAILY, now=now),
        )
        for user, mode in recipients
    ]
    for hook in webhooks:
        generic = hook.format == WebhookEndpoint.Format.GENERIC
        rows.append(
            Notification(
                package=event.package,
                kind=event.kind,
                webhook=hook,
                key=event.key,
                payload=facts,
                created_at=now,
                deliver_after=now if generic else _when(event.kind, daily=False, now=now),
            )
        )
    if not rows:
        return Added()
    with transaction.atomic():
        Notification.objects.bulk_create(rows, ignore_conflicts=True)
        if first_sync and event.kind in BATCHED_KINDS and settings.NOTIFY_BATCH_SECONDS > 0:
            _hold_first_sync(event, rows, now)
    return Added(rows=len(rows), due_now=any(row.deliver_after <= now for row in rows))


def _hold_first_sync(event: Event, rows: list[Notification], now: dt.datetime) -> int:
    """Push back the review requests these people and channels are collecting from this source (one UPDATE).

    Only rows not pushed back in the last tenth of a window are touched: a first sync of N packages costs
    each person's rows one update per tenth of a window it lasts, not one per package (N^2 row writes).
    """
    window = dt.timedelta(seconds=settings.NOTIFY_BATCH_SECONDS)
    oldest = now - dt.timedelta(seconds=max(0, settings.NOTIFY_FIRST_SYNC_MAX_HOLD_SECONDS))
    user_ids = [row.recipient_id for row in rows if row.recipient_id and not row.digest]
    hook_ids = [row.webhook_id for row in rows if row.webhook_id and row.deliver_after > now]
    return (
        Notification.objects.filter(Q(recipient_id__in=user_ids) | Q(webhook_id__in=hook_ids))
        .filter(
            kind=event.kind,
            state=Notification.State.PENDING,
            digest=False,
            attempts=0,
            deliver_after__gt=now,
            deliver_after__lt=now + window - window / 10,
            created_at__gte=oldest,
            package__source_id=event.package.source_id,
        )
        .update(deliver_after=now + window)
    )


def outbox_retry_failed(*, user: Any, ids: Sequence[int] | None = None) -> int:
    """Staff: send failed rows again (all of them, or ``ids``): failed -> pending, due now, attempts reset.

    One conditional UPDATE; the sweep task is sent after commit. Raises ``PermissionDenied`` for non-staff.
    """
    if not (getattr(user, "is_staff", False) and getattr(user, "is_active", False)):
        raise PermissionDenied("Only staff can retry notifications.")
    rows = Notification.objects.filter(state=Notification.State.FAILED)
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    count = rows.update(state=Notification.State.PENDING, attempts=0, deliver_after=timezone.now(), claim="")
    if count:
        from registry_app.tasks import sweep_notifications_task

        transaction.on_commit(lambda: sweep_notifications_task.delay(), robust=True)
    log.info("%s sent %d failed notification(s) again", user.get_username(), count)
    return count
