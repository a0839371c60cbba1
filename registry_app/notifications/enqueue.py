"""Called by other services inside their transactions: write the event's notification rows there, and
kick the sender after commit.

The rows (``emails.notify_*`` -> ``outbox.outbox_add``) commit with the sign-off, decision, conflict or
synced package, or not at all. The kick is ``robust``: a broker that is down when the transaction commits
must not turn a committed request into a 500, and nothing is lost then: the rows stay pending and the
beat sweep (``sweep_notifications``) sends them. Review requests are collected before they go
(``NOTIFY_BATCH_SECONDS``), so they are kicked only when something is due at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from django.db import transaction

from registry_app.notifications.outbox import Added

log = logging.getLogger(__name__)


def _written(write: Callable[[], Added], what: str) -> Added:
    """Run ``write`` in a savepoint: a failure (a bug, a database error) is logged and rolled back alone,
    and the caller's transaction (the decision, the sync) goes on."""
    try:
        with transaction.atomic():
            return write()
    except Exception:  # noqa: BLE001 - a notification problem must not stop a decision or a sync
        log.exception("could not write the %s notifications", what)
        return Added()


def enqueue_review_requested(package_id: int) -> None:
    """The required-role holders (and matching endpoints) are told that ``package_id`` awaits review."""
    from registry_app.notifications.emails import notify_review_requested
    from registry_app.tasks import notify_review_requested_task

    added = _written(lambda: notify_review_requested(package_id), f"review_requested (package {package_id})")
    if added.due_now:
        transaction.on_commit(lambda: notify_review_requested_task.delay(package_id), robust=True)


def enqueue_decided(decision_id: int) -> None:
    """The package's signers and the group's watchers (and matching endpoints) are told about a Decision."""
    from registry_app.notifications.emails import notify_decided
    from registry_app.tasks import notify_decided_task

    if _written(lambda: notify_decided(decision_id), f"decided (decision {decision_id})").rows:
        transaction.on_commit(lambda: notify_decided_task.delay(decision_id), robust=True)


def enqueue_conflict(push_id: UUID | str) -> None:
    """The package's signers and the group's watchers (and matching endpoints) are told a push conflicted."""
    from registry_app.notifications.emails import notify_conflict
    from registry_app.tasks import notify_conflict_task

    push = str(push_id)
    if _written(lambda: notify_conflict(push), f"conflict (push {push})").rows:
        transaction.on_commit(lambda: notify_conflict_task.delay(push), robust=True)


def enqueue_revalidation_due(package_id: int, *, due: str, facts: dict[str, Any]) -> None:
    """The holders of the policy's required roles (but the registrant), the signers and the group's watchers
    (and matching endpoints) are told that ``package_id`` is due for revalidation on ``due`` (an ISO date:
    the notification key, so one reminder per due date however often the beat runs)."""
    from registry_app.notifications.emails import notify_revalidation_due
    from registry_app.tasks import sweep_notifications_task

    added = _written(
        lambda: notify_revalidation_due(package_id, due=due, facts=facts), f"revalidation_due ({package_id})"
    )
    if added.due_now:
        transaction.on_commit(lambda: sweep_notifications_task.delay(), robust=True)


def enqueue_finding_raised(finding_id: int) -> None:
    """The finding's owner is told it was raised; the sweep sends what is due after commit."""
    from registry_app.notifications.finding_mails import notify_finding_raised
    from registry_app.tasks import sweep_notifications_task

    if _written(lambda: notify_finding_raised(finding_id), f"finding_raised (finding {finding_id})").rows:
        transaction.on_commit(lambda: sweep_notifications_task.delay(), robust=True)
