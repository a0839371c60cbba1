"""Findings' e-mails: the owner hears of a finding when it is raised, and once more a few days
before its due date while it is still open (``FINDING_REMINDER_DAYS``).

Both write ``finding_raised`` rows to the outbox (``outbox.outbox_add``) in the caller's transaction;
the key tells them apart and makes repeats write nothing: ``finding:<id>`` on creation,
``finding:<id>:due:<date>`` for the reminder (a new due date may be reminded again).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import DatabaseError
from django.utils import timezone

from registry_app.models import Finding, NotificationKind
from registry_app.notifications.items import display_name, one_line
from registry_app.notifications.outbox import Added, Event, outbox_add
from registry_app.notifications.recipients import audience

__all__ = ["FINDING_REMINDER_DAYS", "notify_finding_raised", "send_finding_reminders"]

log = logging.getLogger(__name__)

FINDING_REMINDER_DAYS = 3
DESCRIPTION_LIMIT = 2000


def _facts(finding: Finding, *, reminder: bool) -> dict[str, object]:
    return {
        "finding_id": finding.pk,
        "ref": finding.ref,
        "title": one_line(finding.title, 200),
        "severity": finding.severity,
        "blocks": finding.blocks_approval,
        "state_label": finding.get_state_display().lower(),
        "due": finding.due_date.isoformat() if finding.due_date else "",
        "description": (finding.description or "")[:DESCRIPTION_LIMIT],
        "raised_by": display_name(finding.raised_by),
        "reminder": reminder,
    }


def _owners(finding: Finding) -> list[object]:
    # A team address (owner_email) has no account to hold preferences: only the owning user is e-mailed.
    return [finding.owner] if finding.owner_id is not None else []


def notify_finding_raised(finding_id: int, *, now: dt.datetime | None = None) -> Added:
    """The finding's owner (as they want ``finding_raised``): a finding was raised and they own it."""
    finding = (
        Finding.objects.select_related("package__group__source", "owner", "raised_by").filter(pk=finding_id).first()
    )
    if finding is None:
        return Added()
    kind = NotificationKind.FINDING_RAISED
    return outbox_add(
        Event(kind, finding.package, f"finding:{finding.pk}", _facts(finding, reminder=False)),
        recipients=audience(_owners(finding), kind),
        now=now,
    )


def send_finding_reminders(now: dt.datetime | None = None) -> int:
    """Beat (with the SLA reminders): remind the owners of open findings due within
    ``FINDING_REMINDER_DAYS`` days (not yet past due). Idempotent: one row per finding and due date."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    due = (
        Finding.objects.filter(
            state__in=Finding.OPEN_STATES,
            owner__isnull=False,
            due_date__gte=today,
            due_date__lte=today + dt.timedelta(days=FINDING_REMINDER_DAYS),
        )
        .select_related("package__group__source", "owner", "raised_by")
        .order_by("pk")
    )
    kind = NotificationKind.FINDING_RAISED
    written = 0
    for finding in due.iterator(chunk_size=200):
        try:
            added = outbox_add(
                Event(
                    kind,
                    finding.package,
                    f"finding:{finding.pk}:due:{finding.due_date}",
                    _facts(finding, reminder=True),
                ),
                recipients=audience(_owners(finding), kind),
                now=now,
            )
        except DatabaseError:  # one finding's rows must not stop the others' reminders
            log.exception("could not write the reminder about finding %s", finding.pk)
            continue
        written += added.rows
    return written
