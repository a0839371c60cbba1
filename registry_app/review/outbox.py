"""Outbox rows on their way: the push task sent after commit, and role flags withdrawn.

Write helpers shared by the sign-off, decision, staleness and push services (which import this
module, never each other for it).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction

from registry_app.models import ModelPackage, PushOutbox
from registry_app.models.registry import ApprovalStatus
from registry_app.review.policy import PolicySpec

__all__ = ["flags_to_withdraw", "flags_withdraw_push", "push_enqueue"]


def push_enqueue(push_id: UUID | str) -> None:
    """Send ``push_task`` after the current transaction commits.

    ``robust``: a broker outage must not turn a committed sign-off into an error page; the row
    stays pending and ``pushes_resend_stuck`` sends it later.
    """
    from registry_app.tasks import push_task

    pid = str(push_id)
    transaction.on_commit(lambda: push_task.apply_async(args=[pid]), robust=True)


def flags_to_withdraw(package: ModelPackage, policy: PolicySpec) -> dict[str, Any]:
    """``{flag: None}`` for each of the policy's role flags the mirror shows set on ``package``
    (a push with these removes them with ``CustomerMetadataPropertiesToRemove``)."""
    current = package.customer_metadata if isinstance(package.customer_metadata, dict) else {}
    return {flag: None for flag in sorted(set(policy.role_flags.values())) if flag in current}


def flags_withdraw_push(package: ModelPackage, policy: PolicySpec, *, acting_username: str) -> PushOutbox | None:
    """A flags push removing the role flags the registry still shows, when no sign-off backs them
    any more (they went stale). Sent after commit. None when no flag is set or the package is decided."""
    flags = flags_to_withdraw(package, policy)
    if not flags or package.approval_status != ApprovalStatus.PENDING:
        return None
    push = PushOutbox.objects.create(
        package=package,
        kind=PushOutbox.Kind.FLAGS,
        flags=flags,
        expected_status=ApprovalStatus.PENDING,
        acting_username=acting_username,
    )
    push_enqueue(push.pk)
    return push
