"""Revalidation services (issue 15): the policy's roles sign off an approved version again.

A revalidation is a review like the first one: the same roles (``required_roles``), the same
separation-of-duties rules (``policy.check_can_sign``: role held, registrant may not sign, one
role per person, a role's approvals complete), on the current evidence (``package_fingerprint``;
a content change makes the sign-offs stale). When every role has its approvals the revalidation
passes: ``LastRevalidated`` (an ISO date) is pushed to the registry as a metadata property,
without changing the approval status. A rejection fails it; compliance may then revoke the
approval (``decisions.package_revoke``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from registry_app.audit import log as audit_log
from registry_app.models import ModelPackage, PolicyVersion, PushOutbox, Revalidation, RevalidationSignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import COMPLIANCE_ROLE, is_active_user, user_roles
from registry_app.review.finding_list import blocking_by_package, finding_refusal
from registry_app.review.outbox import push_enqueue
from registry_app.review.policy import (
    APPROVE,
    APPROVED,
    PENDING_MANUAL_APPROVAL,
    REJECT,
    REJECTED,
    PolicySpec,
    SignOffNotAllowed,
    check_can_sign,
)
from registry_app.review.policy_versions import policy_and_version, version_label
from registry_app.review.revalidation_card import revalidation_outcome, revalidation_views
from registry_app.review.revalidation_read import revalidation_clocks
from registry_app.review.signoffs import MAX_COMMENT, lock_package
from registry_app.review.state import effective_status, is_registrant, package_fingerprint

__all__ = [
    "LAST_REVALIDATED_KEY",
    "RevalidationResult",
    "revalidation_signoff_create",
    "revalidation_signoffs_mark_stale",
    "revalidation_start",
]

LAST_REVALIDATED_KEY = "LastRevalidated"


@dataclass
class RevalidationResult:
    revalidation: Revalidation
    signoff: RevalidationSignOff
    push: PushOutbox | None


def _check_input(user: Any, decision: str, comment: str) -> None:
    if not is_active_user(user):
        raise SignOffNotAllowed("Sign in with an active account to sign off.", code="not_authenticated")
    if decision not in (APPROVE, REJECT):
        raise SignOffNotAllowed(f"Unknown decision {decision!r}: choose approve or reject.", code="invalid_decision")
    if decision == REJECT and not comment:
        raise SignOffNotAllowed("A rejection needs a comment saying what is wrong.", code="comment_required")
    if len(comment) > MAX_COMMENT:
        raise SignOffNotAllowed(
            f"The comment is {len(comment)} characters long; keep it under {MAX_COMMENT}.", code="comment_too_long"
        )


def _check_approved(package: ModelPackage) -> None:
    if package.deleted_at is not None or package.group.deleted_at is not None:
        raise SignOffNotAllowed("This model package has been deleted from the registry.", code="deleted")
    if package.approval_status != ApprovalStatus.APPROVED or effective_status(package) != ApprovalStatus.APPROVED:
        raise SignOffNotAllowed(
            f"Only an Approved model package can be revalidated; this one is {effective_status(package) or 'unknown'}.",
            code="not_approved",
        )


def _open(package: ModelPackage) -> Revalidation | None:
    return Revalidation.objects.filter(package=package, outcome=Revalidation.Outcome.IN_PROGRESS).first()


def _begin(
    package: ModelPackage,
    user: Any,
    policy: PolicySpec,
    version: PolicyVersion | None,
    fingerprint: str,
    due_at: Any,
) -> Revalidation:
    revalidation = Revalidation.objects.create(
        package=package,
        started_by=user,
        due_at=due_at,
        fingerprint=fingerprint,
        policy_name=policy.name,
        policy_version=version,
    )
    audit_log.audit_append(
        "revalidation.started",
        actor=user,
        via=audit_log.Via.WEB,
        subject=revalidation,
        package=package.pk,
        after={
            "policy": policy.name,
            "policy_version": version_label(version),
            "due_at": due_at.isoformat() if due_at else None,
            "fingerprint": fingerprint,
        },
        message=f"{user.get_username()} started the revalidation of {package}",
    )
    return revalidation


def revalidation_start(*, user: Any, package_id: int) -> Revalidation:
    """Compliance or staff: open a revalidation of an Approved version now, due or not.

    One transaction under the package row lock: a ``Revalidation`` (in progress) and its audit entry
    (``revalidation.started``). Returns the open one when there already is one. Raises
    ``PermissionDenied`` (neither compliance nor staff) and ``SignOffNotAllowed`` (unknown, deleted or
    not Approved package)."""
    if not is_active_user(user) or not (COMPLIANCE_ROLE in user_roles(user) or user.is_staff):
        raise PermissionDenied("Only compliance officers and staff can start a revalidation.")
    with transaction.atomic():
        package = lock_package(package_id)
        _check_approved(package)
        existing = _open(package)
        if existing is not None:
            return existing
        policy, version = policy_and_version(package.group)
        fingerprint, _ = package_fingerprint(package, policy=policy)
        clock = revalidation_clocks([package])[package.pk]
        return _begin(package, user, policy, version, fingerprint, clock.due_at)


def revalidation_signoffs_mark_stale(package: ModelPackage, fingerprint: str) -> int:
    """Mark stale the open revalidation's sign-offs made on other content (caller's transaction)."""
    return (
        RevalidationSignOff.objects.filter(
            revalidation__package=package,
            revalidation__outcome=Revalidation.Outcome.IN_PROGRESS,
            stale_at__isnull=True,
        )
        .exclude(fingerprint=fingerprint)
        .update(stale_at=timezone.now())
    )


def revalidation_signoff_create(
    *, user: Any, package_id: int, role: str, decision: str, comment: str, now: dt.datetime | None = None
) -> RevalidationResult:
    """Record ``user``'s revalidation sign-off in ``role`` on an Approved version, and act on it.

    One transaction under the package row lock. The first sign-off on a due or overdue version opens
    its revalidation (implicitly; a version not yet due needs an explicit ``revalidation_start``).
    ``check_can_sign`` applies the first review's rules to the revalidation's own sign-offs. When
    every role has its approvals: outcome passed, ``revalidation.passed`` in the audit log and a
    FLAGS push ``{"LastRevalidated": <date>}`` expecting Approved (sent after commit). A rejection:
    outcome failed, ``revalidation.failed``. Raises ``SignOffNotAllowed`` (with ``code``)."""
    comment = (comment or "").strip()
    _check_input(user, decision, comment)
    with transaction.atomic():
        package = lock_package(package_id)
        _check_approved(package)
        policy, version = policy_and_version(package.group)
        fingerprint, _ = package_fingerprint(package, policy=policy)
        revalidation = _open(package)
        if revalidation is None:
            clock = revalidation_clocks([package], now=now)[package.pk]
            if not clock.is_due:
                raise SignOffNotAllowed(
                    "This version is not due for revalidation; a compliance officer may start one early.",
                    code="not_due",
                )
            revalidation = _begin(package, user, policy, version, fingerprint, clock.due_at)
        revalidation_signoffs_mark_stale(package, fingerprint)
        existing = list(revalidation.signoffs.select_related("user").order_by("created_at", "pk"))
        views = revalidation_views(existing)
        check_can_sign(
            policy,
            user_id=user.pk,
            username=user.get_username(),
            user_roles=user_roles(user),
            role=role,
            signoffs=views,
            current_fingerprint=fingerprint,
            registered_by_user_id=user.pk if is_registrant(package, user) else None,
            package_status=PENDING_MANUAL_APPROVAL,  # a revalidation is open: the status check is ours above
            package_deleted=False,
        )
        # Revalidation reviews the current evidence, findings included: an open blocking finding on this
        # version (or carried over to it) blocks a passing revalidation as it blocks a first approval.
        blocking = blocking_by_package([package]).get(package.pk, []) if decision == APPROVE else []
        if blocking:
            raise SignOffNotAllowed(finding_refusal(blocking), code="finding_blocked")
        signoff = RevalidationSignOff.objects.create(
            revalidation=revalidation,
            user=user,
            role=role,
            decision=decision,
            comment=comment,
            fingerprint=fingerprint,
            created_at=now or timezone.now(),
        )
        audit_log.audit_append(
            "revalidation.signoff",
            actor=user,
            via=audit_log.Via.WEB,
            subject=signoff,
            package=package.pk,
            after={"role": role, "decision": decision, "fingerprint": fingerprint, "comment": comment},
            message=f"{user.get_username()} signed the revalidation of {package} as {role}: {decision}",
        )
        outcome = revalidation_outcome(policy, [*views, *revalidation_views([signoff])], fingerprint)
        push = _conclude(package, revalidation, (policy, version), outcome, user, fingerprint, now or timezone.now())
    return RevalidationResult(revalidation, signoff, push)


def _conclude(
    package: ModelPackage,
    revalidation: Revalidation,
    in_force: tuple[PolicySpec, PolicyVersion | None],
    outcome: str,
    user: Any,
    fingerprint: str,
    when: dt.datetime,
) -> PushOutbox | None:
    if outcome not in (APPROVED, REJECTED):
        return None
    policy, version = in_force
    passed = outcome == APPROVED
    revalidation.outcome = Revalidation.Outcome.PASSED if passed else Revalidation.Outcome.FAILED
    revalidation.completed_at = when
    revalidation.fingerprint = fingerprint
    revalidation.policy_name = policy.name
    revalidation.policy_version = version  # the version it was concluded under (who, when, which policy)
    revalidation.save(update_fields=["outcome", "completed_at", "fingerprint", "policy_name", "policy_version"])
    audit_log.audit_append(
        "revalidation.passed" if passed else "revalidation.failed",
        actor=user,
        via=audit_log.Via.WEB,
        subject=revalidation,
        package=package.pk,
        after={
            "policy": policy.name,
            "policy_version": version_label(version),
            "completed_at": when.isoformat(),
            "fingerprint": fingerprint,
        },
        message=f"Revalidation of {package} {'passed' if passed else 'failed'} under {version_label(version)}",
    )
    if not passed:
        return None
    push = PushOutbox.objects.create(
        package=package,
        kind=PushOutbox.Kind.FLAGS,
        flags={LAST_REVALIDATED_KEY: when.date().isoformat()},
        expected_status=ApprovalStatus.APPROVED,
        acting_username=user.get_username(),
    )
    push_enqueue(push.pk)
    return push
