"""Compliance decisions outside the sign-off flow: revoking an approval, archiving a group.

Both write Decision rows and their pushes in one transaction under row locks; nothing is ever
deleted in the registry (archiving rejects every live version). AWS is called by the push task
after commit.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from registry_app.audit import log as audit_log
from registry_app.models import Decision, ModelPackage, ModelPackageGroup, PolicyException, PushOutbox
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import COMPLIANCE_ROLE, is_active_user, user_roles
from registry_app.review.outbox import flags_to_withdraw, push_enqueue
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.policy_versions import policy_and_version, version_in_force
from registry_app.review.push import ACTIVE_STATES
from registry_app.review.push_intent import MAX_DESCRIPTION
from registry_app.review.queue_state import review_state_refresh
from registry_app.review.signoffs import lock_package, policy_decide, review_now
from registry_app.review.state import (
    effective_status,
    exception_gates,
    metric_observations,
    verdict,
)
from registry_app.review.status import gate_shortfall

__all__ = ["MAX_JUSTIFICATION", "group_archive", "package_revoke", "policy_exception_record"]

MAX_JUSTIFICATION = 800


def _plain(text: str) -> str:
    """One line of printable text (ApprovalDescription is shown in consoles and e-mails)."""
    kept = "".join(" " if ch.isspace() else ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")
    return " ".join(kept.split())


def _description(text: str) -> str:
    text = _plain(text)
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1].rstrip() + "…"


def _require_compliance(user: Any, action: str) -> None:
    if not is_active_user(user) or COMPLIANCE_ROLE not in user_roles(user):
        raise PermissionDenied(f"Only compliance officers can {action}.")


def _justification(text: str, action: str) -> str:
    cleaned = _plain(text or "")
    if not cleaned:
        raise ValueError(f"{action} needs a justification.")
    if len(cleaned) > MAX_JUSTIFICATION:
        raise ValueError(f"The justification is {len(cleaned)} characters long; keep it under {MAX_JUSTIFICATION}.")
    return cleaned


def _push_decision(
    package: ModelPackage, decision: Decision, *, expected_status: str, user: Any, flags: dict[str, Any] | None = None
) -> PushOutbox:
    push = PushOutbox.objects.create(
        package=package,
        decision=decision,
        kind=PushOutbox.Kind.DECISION,
        target_status=decision.status,
        target_description=decision.description,
        flags=flags or {},
        expected_status=expected_status,
        acting_username=user.get_username(),
    )
    push_enqueue(push.pk)
    return push


def package_revoke(*, user: Any, package_id: int, justification: str) -> Decision:
    """Compliance: move an Approved package to Rejected.

    One transaction under the package row lock: a Decision (kind revocation) and its push
    (Approved -> Rejected; a registry status other than Approved by then is a conflict), and the
    package's stored review state refreshed. After commit: the push task and ``enqueue_decided``.
    The push also withdraws the role flags written at approval (``CustomerMetadataPropertiesToRemove``):
    a revoked package must not still read as approved by each role; who signed stays in the
    dashboard's sign-offs and audit log.
    Raises ``PermissionDenied`` (not compliance), ``ValueError`` (no justification),
    ``SignOffNotAllowed`` (unknown, deleted or not Approved package).
    """
    _require_compliance(user, "revoke an approval")
    reason = _justification(justification, "A revocation")
    with transaction.atomic():
        try:
            package = ModelPackage.objects.select_for_update().get(pk=package_id)
        except (ModelPackage.DoesNotExist, ValueError, TypeError) as exc:
            raise SignOffNotAllowed("There is no such model package.", code="not_found") from exc
        if package.deleted_at is not None:
            raise SignOffNotAllowed(
                "This model package has been deleted from the registry; its approval cannot be revoked.",
                code="deleted",
            )
        if package.approval_status != ApprovalStatus.APPROVED:
            raise SignOffNotAllowed(
                "Only a model package the registry shows as Approved can have its approval revoked; "
                f"this one is {package.approval_status or 'unknown'}.",
                code="not_approved",
            )
        if effective_status(package, include_failed=False) != ApprovalStatus.APPROVED:
            raise SignOffNotAllowed(
                "A decision rejecting this model package is already on its way to SageMaker.", code="not_approved"
            )
        policy, version = policy_and_version(package.group)
        decision = Decision.objects.create(
            package=package,
            kind=Decision.Kind.REVOCATION,
            status=ApprovalStatus.REJECTED,
            description=_description(f"Approval revoked via governance dashboard by {user.get_username()}: {reason}"),
            decided_by=user,
            policy_version=version,
        )
        # The approval no longer stands: its role flags are withdrawn with the status (issue 9).
        withdrawn = flags_to_withdraw(package, policy)
        _push_decision(package, decision, expected_status=ApprovalStatus.APPROVED, user=user, flags=withdrawn)
        audit_log.audit_decision(decision)
        from registry_app.notifications.enqueue import enqueue_decided

        enqueue_decided(decision.pk)
        review_state_refresh([package.pk])
    return decision


def group_archive(*, user: Any, group_id: int, justification: str) -> list[Decision]:
    """Compliance: reject every live version of a group that is not already Rejected.

    One transaction, locking the group row, then its packages: per package a Decision (kind
    archive, "Archived via governance dashboard by <user>: <justification>") and a push whose
    expected status is what the package has (or is about to have: a decision still on its way
    is pushed first), and their stored review state refreshed. Nothing is deleted in the registry.
    Returns the decisions (empty when nothing was left to archive). Raises ``PermissionDenied``,
    ``ValueError`` or ``SignOffNotAllowed`` (unknown or deleted group).
    """
    _require_compliance(user, "archive a model package group")
    reason = _justification(justification, "Archiving a group")
    with transaction.atomic():
        try:
            group = ModelPackageGroup.objects.select_for_update().get(pk=group_id)
        except (ModelPackageGroup.DoesNotExist, ValueError, TypeError) as exc:
            raise SignOffNotAllowed("There is no such model package group.", code="not_found") from exc
        if group.deleted_at is not None:
            raise SignOffNotAllowed(
                "This model package group has been deleted from the registry and cannot be archived.", code="deleted"
            )
        packages = list(
            ModelPackage.objects.select_for_update()
            .filter(group=group, deleted_at__isnull=True)
            .order_by("version")
            .only("pk", "approval_status", "group_id")
        )
        on_their_way: dict[int, list[PushOutbox]] = {}
        for push in PushOutbox.objects.filter(
            package__in=packages, kind=PushOutbox.Kind.DECISION, state__in=ACTIVE_STATES
        ):
            on_their_way.setdefault(push.package_id, []).append(push)
        description = _description(f"Archived via governance dashboard by {user.get_username()}: {reason}")
        decisions: list[Decision] = []
        version = version_in_force(group)
        from registry_app.notifications.enqueue import enqueue_decided

        for package in packages:
            status = effective_status(package, on_their_way.get(package.pk, []), include_failed=False)
            if status == ApprovalStatus.REJECTED:
                continue
            decision = Decision.objects.create(
                package=package,
                kind=Decision.Kind.ARCHIVE,
                status=ApprovalStatus.REJECTED,
                description=description,
                decided_by=user,
                policy_version=version,
            )
            _push_decision(package, decision, expected_status=status, user=user)
            audit_log.audit_decision(decision)
            enqueue_decided(decision.pk)
            decisions.append(decision)
        audit_log.audit_append(
            "group.archived",
            actor=user,
            via=audit_log.Via.WEB,
            subject=group,
            after={"decision_ids": [d.pk for d in decisions], "justification": reason},
            message=f"Group {group.name} archived: {len(decisions)} version(s) to be rejected",
        )
        review_state_refresh([p.pk for p in packages])
    return decisions


def policy_exception_record(*, user: Any, package_id: int, justification: str) -> PolicyException:
    """Compliance: record a justified exception to the gates that now block a pending version.

    One transaction under the package row lock: the exception (bound to the current content's
    fingerprint: a change voids it, as it voids sign-offs), its audit entry (``policy.exception``
    with the gates, observed vs required, and the justification), and the stored review state
    refreshed. When every role already has its approvals, the policy decides at once: a Decision
    whose ApprovalDescription carries the exception, and its push (sent after commit).
    Raises ``PermissionDenied`` (not compliance), ``ValueError`` (no justification),
    ``SignOffNotAllowed`` (unknown, deleted or decided package, or no gate blocks it).
    """
    _require_compliance(user, "record a policy exception")
    reason = _justification(justification, "A policy exception")
    with transaction.atomic():
        package = lock_package(package_id)
        now = review_now(package)
        policy, fingerprint, signoffs, exceptions, state = (
            now.policy,
            now.fingerprint,
            now.views,
            now.exceptions,
            now.state,
        )
        if state.deleted or state.decided:
            raise SignOffNotAllowed(
                f"This model package is already decided ({state.outcome}); no exception can change that.",
                code="already_decided",
            )
        if not state.blocking:
            raise SignOffNotAllowed("No gate blocks this version: there is nothing to except.", code="not_blocked")
        gates = [{"gate": str(g.gate), "shortfall": gate_shortfall(g)} for g in state.blocking]
        exception = PolicyException.objects.create(
            package=package, fingerprint=fingerprint, gates=gates, justification=reason, recorded_by=user
        )
        audit_log.audit_append(
            "policy.exception",
            actor=user,
            via=audit_log.Via.WEB,
            subject=package,
            package=package.pk,
            after={"gates": gates, "justification": reason, "fingerprint": fingerprint},
            message=f"Policy exception by {user.get_username()} for {', '.join(g['shortfall'] for g in gates)}",
        )
        exceptions.insert(0, exception)
        after = verdict(
            package,
            policy=policy,
            signoffs=signoffs,
            metrics=metric_observations(package),
            fingerprint=fingerprint,
            status=state.status,
            waived=exception_gates(exceptions, fingerprint),
        )
        # An open blocking finding still holds the approval back (it must be closed or accepted first).
        if after.result.decision == ApprovalStatus.APPROVED and not state.blocking_findings:
            decision, push = policy_decide(
                package,
                policy,
                signoffs,
                fingerprint,
                ApprovalStatus.APPROVED,
                user=user,
                signoff=None,
                exceptions=exceptions,
                version=now.version,
            )
            audit_log.audit_decision(decision)
            push_enqueue(push.pk)
        review_state_refresh([package.pk])
    return exception
