"""Called by other services inside their transactions: write the event's notification rows there, and
kick the sender after commit.

The rows (``emails.notify_*`` -> ``outbox.outbox_add``) commit with the sign-off, decision, conflict or
synced package, or not at all. The kick is ``robust``: a broker that is down when the transaction commits
must not turn a committed request into a 500, and nothing is lost then: the rows stay pending and the
beat sweep (``sweep_notifications``) sends them. Review requests are collected before they go
(``NOTIFY_BATCH_SECONDS``), so they are kicked only when something is due at once.
"""

from __future__ import annotations

from uuid import UUID

from django.db import transaction


def enqueue_review_requested(package_id: int) -> None:
    """The required-role holders (and matching endpoints) are told that ``package_id`` awaits review."""
    from registry_app.notifications.emails import notify_review_requested
    from registry_app.tasks import notify_review_requested_task

    if notify_review_requested(package_id).due_now:
        transaction.on_commit(lambda: notify_review_requested_task.delay(package_id), robust=True)


def enqueue_decided(decision_id: int) -> None:
    """The package's signers and the group's watchers (and matching endpoints) are told about a Decision."""
    from registry_app.notifications.emails import notify_decided
    from registry_app.tasks import notify_decided_task

    if notify_decided(decision_id).rows:
        transaction.on_commit(lambda: notify_decided_task.delay(decision_id), robust=True)


def enqueue_conflict(push_id: UUID | str) -> None:
    """The package's signers and the group's watchers (and matching endpoints) are told a push conflicted."""
    from registry_app.notifications.emails import notify_conflict
    from registry_app.tasks import notify_conflict_task

    push = str(push_id)
    if notify_conflict(push).rows:
        transaction.on_commit(lambda: notify_conflict_task.delay(push), robust=True)
