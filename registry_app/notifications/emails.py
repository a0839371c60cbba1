"""Email notifications: review requested, SLA reminders, decisions and push conflicts.

``notify_*`` / ``send_sla_reminders`` (run by the Celery tasks that ``enqueue`` schedules after commit)
pick the recipients (``recipients``) and deliver through ``delivery``, which sends each recipient one
email per ``(package, kind, recipient, key)`` however often a task runs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from uuid import UUID

from django.core.mail import get_connection
from django.utils import timezone

from registry_app.models import Decision, ModelPackage, ModelPackageGroup, NotificationKind, PushOutbox
from registry_app.notifications.delivery import DeliveryReport, base_context, deliver, display_name, one_line
from registry_app.notifications.recipients import reminder_recipients, role_holders, signers_and_watchers, wanting
from registry_app.permissions import registrant_user_ids
from registry_app.review.policies import policy_for_group

if TYPE_CHECKING:
    from registry_app.review.policy import PolicySpec

__all__ = [
    "notify_conflict",
    "notify_decided",
    "notify_review_requested",
    "send_sla_reminders",
]

PENDING_MANUAL_APPROVAL = "PendingManualApproval"

DECISION_VERBS: dict[str, str] = {
    Decision.Kind.POLICY: "approved",
    Decision.Kind.REJECTION: "rejected",
    Decision.Kind.REVOCATION: "revoked",
    Decision.Kind.ARCHIVE: "archived",
}


def policy_for(group: ModelPackageGroup) -> PolicySpec:
    """The approval policy of ``group`` (a seam the tests can replace)."""
    return policy_for_group(group)


def _package(package_id: int) -> ModelPackage | None:
    return ModelPackage.objects.select_related("group__source").filter(pk=package_id).first()


# --------------------------------------------------------------------------------------------
# The four notifications
# --------------------------------------------------------------------------------------------


def notify_review_requested(package_id: int) -> DeliveryReport:
    """Email every holder of a required role that the package awaits manual approval.

    Does nothing if the package is gone, deleted, or no longer PendingManualApproval. Re-syncs
    and retries are idempotent (key ``""``: one email per package and recipient).
    """
    package = _package(package_id)
    if package is None or package.deleted_at is not None or package.approval_status != PENDING_MANUAL_APPROVAL:
        return DeliveryReport()
    policy = policy_for(package.group)
    registrants = set(registrant_user_ids(package))  # separation of duties: they cannot sign it
    holders = [u for u in role_holders(policy.required_roles) if u.pk not in registrants]
    recipients = wanting(holders, NotificationKind.REVIEW_REQUESTED)
    context = {**base_context(package), "roles": list(policy.required_roles), "policy_name": policy.name}
    subject = f"Review requested: {package.group.name} v{package.version}"
    return deliver(
        package=package,
        kind=NotificationKind.REVIEW_REQUESTED,
        key="",
        recipients=recipients,
        subject=subject,
        context=context,
    )


def send_sla_reminders(now: dt.datetime | None = None) -> DeliveryReport:
    """Beat (hourly): remind reviewers of pending packages older than their policy's SLA.

    Key ``sla:<n>`` where n = whole days past the deadline, so at most one reminder per
    recipient and package per day however often beat runs.
    """
    from registry_app.review.policy import sla_state

    now = now or timezone.now()
    total = DeliveryReport()
    pending = (
        ModelPackage.objects.select_related("group__source")
        .filter(approval_status=PENDING_MANUAL_APPROVAL, deleted_at__isnull=True, group__deleted_at__isnull=True)
        .order_by("pk")
    )
    connection = get_connection(fail_silently=False)
    for package in pending.iterator(chunk_size=200):
        created = package.created_at or package.first_seen_at
        policy = policy_for(package.group)
        state, age_hours = sla_state(created, now, policy.sla_hours)
        if state != "overdue":
            continue
        days_over = int((age_hours - policy.sla_hours) // 24)
        recipients = wanting(reminder_recipients(package, policy), NotificationKind.SLA_REMINDER)
        context = {
            **base_context(package),
            "sla_hours": policy.sla_hours,
            "age_hours": int(age_hours),
            "age_days": round(age_hours / 24, 1),
            "policy_name": policy.name,
        }
        report = deliver(
            package=package,
            kind=NotificationKind.SLA_REMINDER,
            key=f"sla:{days_over}",
            recipients=recipients,
            subject=f"Review overdue: {package.group.name} v{package.version} (SLA {policy.sla_hours}h)",
            context=context,
            connection=connection,
        )
        total.sent += report.sent
        total.skipped += report.skipped
        for exc in report.errors or []:
            total.add_error(exc)
    return total


def notify_decided(decision_id: int) -> DeliveryReport:
    """Tell the package's signers and the group's watchers what was decided and by whom."""
    decision = Decision.objects.select_related("package__group__source", "decided_by").filter(pk=decision_id).first()
    if decision is None:
        return DeliveryReport()
    package = decision.package
    verb = DECISION_VERBS.get(decision.kind, one_line(decision.get_kind_display()).lower())
    actor = display_name(decision.decided_by)
    context = {
        **base_context(package),
        "decision": decision,
        "verb": verb,
        "actor": actor,
        "target_status": decision.status,
        "description": decision.description,
    }
    return deliver(
        package=package,
        kind=NotificationKind.DECIDED,
        key=f"decision:{decision.pk}",
        recipients=wanting(signers_and_watchers(package), NotificationKind.DECIDED),
        subject=f"{package.group.name} v{package.version} {verb} by {actor}",
        context=context,
    )


def _conflict_found(push: PushOutbox) -> str:
    """The registry status found instead of the expected one, from whichever key the push recorded."""
    detail = push.conflict_detail if isinstance(push.conflict_detail, dict) else {}
    for key in ("found_status", "actual_status", "current_status", "registry_status", "status", "ModelApprovalStatus"):
        value = detail.get(key)
        if value:
            return one_line(str(value), 64)
    return push.package.approval_status or "unknown"


def notify_conflict(push_id: UUID | str) -> DeliveryReport:
    """Tell signers and watchers that the registry changed outside the dashboard and the push was not applied."""
    push = PushOutbox.objects.select_related("package__group__source", "decision").filter(pk=str(push_id)).first()
    if push is None or push.state != PushOutbox.State.CONFLICT:
        return DeliveryReport()
    package = push.package
    detail = push.conflict_detail if isinstance(push.conflict_detail, dict) else {}
    context = {
        **base_context(package),
        "push": push,
        "expected_status": push.expected_status,
        "found_status": _conflict_found(push),
        "target_status": push.target_status,
        "detail_items": sorted((str(k), one_line(str(v), 500)) for k, v in detail.items()),
        "acting_username": push.acting_username,
    }
    return deliver(
        package=package,
        kind=NotificationKind.CONFLICT,
        key=f"push:{push.pk}",
        recipients=wanting(signers_and_watchers(package), NotificationKind.CONFLICT),
        subject=f"Push NOT applied: {package.group.name} v{package.version} was changed outside the dashboard",
        context=context,
    )
