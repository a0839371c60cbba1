"""Scheduling notification emails: each ``enqueue_*`` sends its Celery task after commit.

Called by other services inside their transactions: a rolled-back transaction sends nothing, and no
SMTP call ever runs inside ``atomic`` (the tasks run ``emails.notify_*``).
"""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

# ``robust``: the caller's transaction has committed (a sign-off, a decision); a broker that is down
# then must not turn the request into a 500. Django logs the failure; that email is not sent.


def enqueue_review_requested(package_id: int) -> None:
    """After commit: email the required-role holders that ``package_id`` awaits review."""
    from registry_app.tasks import notify_review_requested_task

    transaction.on_commit(lambda: notify_review_requested_task.delay(package_id), robust=True)


def enqueue_decided(decision_id: int) -> None:
    """After commit: email the package's signers and the group's watchers about a Decision."""
    from registry_app.tasks import notify_decided_task

    transaction.on_commit(lambda: notify_decided_task.delay(decision_id), robust=True)


def enqueue_conflict(push_id: UUID | str) -> None:
    """After commit: email the package's signers and the group's watchers that a push conflicted."""
    from registry_app.tasks import notify_conflict_task

    push = str(push_id)
    transaction.on_commit(lambda: notify_conflict_task.delay(push), robust=True)
