"""Revalidation reminders (issue 15): the daily beat tells who may sign that an approved version is due
(or overdue) for revalidation. Rows written by ``emails.notify_revalidation_due`` (through ``enqueue``);
the key is the due date, so a version is told once per due date (and again once overdue) however often
the beat runs."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import DatabaseError, transaction

from registry_app.notifications.enqueue import enqueue_revalidation_due
from registry_app.review.revalidation_read import due_clocks

__all__ = ["send_revalidation_reminders"]

log = logging.getLogger(__name__)


def send_revalidation_reminders(now: dt.datetime | None = None) -> int:
    """Beat (daily): write reminders for every version due or overdue for revalidation. Returns the
    versions told about. Each version's rows are their own transaction; the sender is kicked after."""
    told = 0
    for package, clock in due_clocks(now=now):
        assert clock.due_at is not None and clock.overdue_at is not None
        facts = {
            "state": clock.state,
            "overdue_from": clock.overdue_at.date().isoformat(),
            "every_days": clock.every_days,
            "grace_days": clock.grace_days,
        }
        try:
            with transaction.atomic():
                enqueue_revalidation_due(package.pk, due=clock.due_at.date().isoformat(), facts=facts)
        except DatabaseError:  # one version's rows must not stop the others' reminders
            log.exception("could not write the revalidation reminders about package %s", package.pk)
            continue
        told += 1
    return told
