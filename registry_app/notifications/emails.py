"""The notifications: review requested, SLA reminders, decided / revoked and push conflicts.

Each ``notify_*`` picks who hears of the event (``recipients``: people with how each wants it, and the
matching chat / webhook endpoints), captures what the messages will say (the facts) and writes the rows
to the outbox (``outbox.outbox_add``) in the current transaction. Nothing is sent here: the sender
(``sender``) sends what is due, after commit or from the beat sweep. Repeats write nothing (one row per
``(package, kind, recipient or webhook, key)``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db import DatabaseError
from django.utils import timezone

from registry_app.models import Decision, ModelPackage, ModelPackageGroup, NotificationKind, PushOutbox
from registry_app.notifications.items import display_name, one_line
from registry_app.notifications.outbox import Added, Event, outbox_add, source_never_synced
from registry_app.notifications.recipients import (
    audience,
    reminder_recipients,
    role_holders,
    signers_and_watchers,
    webhooks_for,
)
from registry_app.permissions import registrant_user_ids
from registry_app.review.policies import policy_for_group

if TYPE_CHECKING:
    from registry_app.review.policy import PolicySpec

__all__ = [
    "notify_conflict",
    "notify_decided",
    "notify_package_event",
    "notify_revalidation_due",
    "notify_review_requested",
    "send_sla_reminders",
]

log = logging.getLogger(__name__)

PENDING_MANUAL_APPROVAL = "PendingManualApproval"
DESCRIPTION_LIMIT = 2000

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


def _is_pending(package: ModelPackage | None) -> bool:
    return package is not None and package.deleted_at is None and package.approval_status == PENDING_MANUAL_APPROVAL


# --------------------------------------------------------------------------------------------
# The notifications
# --------------------------------------------------------------------------------------------


def notify_review_requested(package_id: int, *, now: dt.datetime | None = None) -> Added:
    """Every holder of a required role (but the registrant) and the matching endpoints: the package awaits
    manual approval. Nothing if the package is gone, deleted or no longer PendingManualApproval (key ``""``:
    one row per package and recipient). During the first sync of its source, the review requests are
    collected into one digest per reviewer (``outbox``)."""
    package = _package(package_id)
    if package is None or not _is_pending(package):
        return Added()
    policy = policy_for(package.group)
    registrants = set(registrant_user_ids(package))  # separation of duties: they cannot sign it
    holders = [u for u in role_holders(policy.required_roles) if u.pk not in registrants]
    kind = NotificationKind.REVIEW_REQUESTED
    facts = {"roles": list(policy.required_roles), "policy_name": policy.name}
    return outbox_add(
        Event(kind, package, "", facts),
        recipients=audience(holders, kind),
        webhooks=webhooks_for(kind, package, policy.required_roles),
        first_sync=source_never_synced(package.source_id),
        now=now,
    )


def send_sla_reminders(now: dt.datetime | None = None) -> int:
    """Beat (hourly): remind reviewers of pending packages older than their policy's SLA. Returns rows written.

    Key ``sla:<n>`` where n = whole days past the deadline, so at most one reminder per recipient and
    package per day however often beat runs. Each package's rows are their own transaction.
    """
    from registry_app.review.policy import sla_state

    now = now or timezone.now()
    written = 0
    pending = (
        ModelPackage.objects.select_related("group__source")
        .filter(approval_status=PENDING_MANUAL_APPROVAL, deleted_at__isnull=True, group__deleted_at__isnull=True)
        .order_by("pk")
    )
    kind = NotificationKind.SLA_REMINDER
    for package in pending.iterator(chunk_size=200):
        created = package.created_at or package.first_seen_at
        policy = policy_for(package.group)
        state, age_hours = sla_state(created, now, policy.sla_hours)
        if state != "overdue":
            continue
        days_over = int((age_hours - policy.sla_hours) // 24)
        facts = {
            "sla_hours": policy.sla_hours,
            "age_hours": int(age_hours),
            "age_days": round(age_hours / 24, 1),
            "policy_name": policy.name,
        }
        try:
            added = outbox_add(
                Event(kind, package, f"sla:{days_over}", facts),
                recipients=audience(reminder_recipients(package, policy), kind),
                now=now,
            )
        except DatabaseError:  # one package's rows must not stop the others' reminders
            log.exception("could not write the SLA reminders about package %s", package.pk)
            continue
        written += added.rows
    return written


def notify_decided(decision_id: int, *, now: dt.datetime | None = None) -> Added:
    """The package's signers and the group's watchers, and the matching endpoints: what was decided and by
    whom (a revocation is its own kind, ``revoked``)."""
    decision = Decision.objects.select_related("package__group__source", "decided_by").filter(pk=decision_id).first()
    if decision is None:
        return Added()
    package = decision.package
    kind = NotificationKind.REVOKED if decision.kind == Decision.Kind.REVOCATION else NotificationKind.DECIDED
    facts = {
        "decision_id": decision.pk,
        "decision_kind": decision.kind,
        "verb": DECISION_VERBS.get(decision.kind, one_line(decision.get_kind_display()).lower()),
        "actor": display_name(decision.decided_by),
        "target_status": decision.status,
        "description": (decision.description or "")[:DESCRIPTION_LIMIT],
    }
    return outbox_add(
        Event(kind, package, f"decision:{decision.pk}", facts),
        recipients=audience(signers_and_watchers(package), kind),
        webhooks=webhooks_for(kind, package, policy_for(package.group).required_roles),
        now=now,
    )


def _conflict_found(push: PushOutbox) -> str:
    """The registry status found instead of the expected one, from whichever key the push recorded."""
    detail = push.conflict_detail if isinstance(push.conflict_detail, dict) else {}
    for key in ("found_status", "actual_status", "current_status", "registry_status", "status", "ModelApprovalStatus"):
        value = detail.get(key)
        if value:
            return one_line(str(value), 64)
    return push.package.approval_status or "unknown"


def notify_conflict(push_id: UUID | str, *, now: dt.datetime | None = None) -> Added:
    """Signers, watchers and the matching endpoints: the registry changed outside the dashboard and the push
    was not applied. Nothing unless the push is (still) a conflict."""
    push = PushOutbox.objects.select_related("package__group__source", "decision").filter(pk=str(push_id)).first()
    if push is None or push.state != PushOutbox.State.CONFLICT:
        return Added()
    package = push.package
    detail = push.conflict_detail if isinstance(push.conflict_detail, dict) else {}
    kind = NotificationKind.CONFLICT
    facts = {
        "push_id": str(push.pk),
        "expected_status": push.expected_status,
        "found_status": _conflict_found(push),
        "target_status": push.target_status,
        "detail_items": sorted([str(k), one_line(str(v), 500)] for k, v in detail.items()),
        "acting_username": push.acting_username,
    }
    return outbox_add(
        Event(kind, package, f"push:{push.pk}", facts),
        recipients=audience(signers_and_watchers(package), kind),
        webhooks=webhooks_for(kind, package, policy_for(package.group).required_roles),
        now=now,
    )


def notify_package_event(
    kind: str,
    package: ModelPackage,
    *,
    key: str,
    facts: dict[str, Any],
    users: Iterable[Any] = (),
    now: dt.datetime | None = None,
) -> Added:
    """For the events of features to come (``finding_raised``, ``revalidation_due``): tell ``users`` (as each
    wants ``kind``), the package's signers and its group's watchers, and the matching endpoints. Call it
    inside the transaction that records the event (then kick the sender after commit, as ``enqueue`` does).
    ``key`` tells repeats apart (``finding:<id>``, ``revalidation:<date>``); ``facts`` (JSON) is what the
    messages say: ``title`` for a finding, ``due`` for a revalidation. Until the kind is in ``EMAIL_KINDS``
    (with its templates) its e-mails use the digest layout and the profile page offers no choice for it."""
    return outbox_add(
        Event(kind, package, key, facts),
        recipients=audience([*users, *signers_and_watchers(package)], kind),
        webhooks=webhooks_for(kind, package, policy_for(package.group).required_roles),
        now=now,
    )


def notify_revalidation_due(
    package_id: int, *, due: str, facts: dict[str, Any], now: dt.datetime | None = None
) -> Added:
    """Rows for one due version: the holders of its policy's required roles (not the registrant, who may
    not sign), plus its signers and its group's watchers. Key ``revalidation:<due>[:overdue]``."""
    package = _package(package_id)
    if package is None or package.deleted_at is not None:
        return Added()
    policy = policy_for(package.group)
    registrants = set(registrant_user_ids(package))
    holders = [u for u in role_holders(policy.required_roles) if u.pk not in registrants]
    key = f"revalidation:{due}" + (":overdue" if facts.get("state") == "overdue" else "")
    return notify_package_event(
        NotificationKind.REVALIDATION_DUE,
        package,
        key=key,
        facts={**facts, "due": due, "policy_name": policy.name, "roles": list(policy.required_roles)},
        users=holders,
        now=now,
    )
