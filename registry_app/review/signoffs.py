"""Recording sign-offs, and what follows from them: role flags, decisions and their pushes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.audit import log as audit_log
from registry_app.models import Decision, ModelPackage, PushOutbox, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import is_active_user, user_roles
from registry_app.review.outbox import push_enqueue
from registry_app.review.policies import policy_for_group
from registry_app.review.policy import (
    APPROVE,
    APPROVED,
    REJECT,
    REJECTED,
    PolicyResult,
    PolicySpec,
    SignOffNotAllowed,
    SignOffView,
    approval_description,
    role_flags_for,
)
from registry_app.review.queue_state import review_state_refresh
from registry_app.review.state import (
    check_signoff,
    effective_status,
    is_registrant,
    metric_observations,
    package_fingerprint,
    signoff_views,
    verdict,
)

__all__ = [
    "MAX_COMMENT",
    "SignOffResult",
    "signoff_create",
]

MAX_COMMENT = 4000


@dataclass
class SignOffResult:
    signoff: SignOff
    decision: Decision | None
    result: PolicyResult
    pushes: list[PushOutbox]


# --------------------------------------------------------------------------------------------- helpers


def _lock_package(package_id: int) -> ModelPackage:
    try:
        return ModelPackage.objects.select_for_update().get(pk=package_id)
    except (ModelPackage.DoesNotExist, ValueError, TypeError) as exc:
        raise SignOffNotAllowed("There is no such model package.", code="not_found") from exc


# --------------------------------------------------------------------------------------------- services


def signoff_create(*, user: Any, package_id: int, role: str, decision: str, comment: str) -> SignOffResult:
    """Record ``user``'s sign-off in ``role`` and act on the policy's verdict.

    One transaction, under the package row lock: re-read the sign-offs, fingerprint the
    package, ``check_can_sign`` (separation of duties, registrant, decided/deleted package,
    role held and required), create the SignOff, then

    * an approval that completes its role queues a flags push (``{flag: "true"}``);
    * when the policy now says Approved or Rejected: a Decision with the ApprovalDescription and a
      decision push (target status, description, every satisfied role's flag).

    The package's stored review state is refreshed in the same transaction.
    Side effects after commit only: ``push_task`` per push, ``enqueue_decided`` for a decision.
    Raises ``SignOffNotAllowed`` (with ``code``) for every refusal.
    """
    comment = (comment or "").strip()
    if not is_active_user(user):
        raise SignOffNotAllowed("Sign in with an active account to sign off.", code="not_authenticated")
    if decision not in (APPROVE, REJECT):
        raise SignOffNotAllowed(f"Unknown decision {decision!r}: choose approve or reject.", code="invalid_decision")
    if decision == REJECT and not comment:
        raise SignOffNotAllowed("A rejection needs a comment saying what must change.", code="comment_required")
    if len(comment) > MAX_COMMENT:
        raise SignOffNotAllowed(
            f"The comment is {len(comment)} characters long; keep it under {MAX_COMMENT}.", code="comment_too_long"
        )
    with transaction.atomic():
        package = _lock_package(package_id)
        group = package.group
        policy = policy_for_group(group)
        fingerprint, detail = package_fingerprint(package, policy=policy)
        existing = list(SignOff.objects.filter(package=package).select_related("user").order_by("created_at", "pk"))
        views = signoff_views(existing)
        metrics = metric_observations(package)
        before = verdict(
            package,
            policy=policy,
            signoffs=views,
            metrics=metrics,
            fingerprint=fingerprint,
            status=effective_status(package),
        )
        check_signoff(before, user, user_roles(user), role, registrant=is_registrant(package, user))
        newly_stale = [s for s in existing if s.stale_at is None and s.fingerprint != fingerprint]
        if _mark_stale(newly_stale):
            audit_log.audit_signoffs_stale(
                package, [s.pk for s in newly_stale], fingerprint=fingerprint, actor=user, via=audit_log.Via.WEB
            )
        signoff = SignOff.objects.create(
            package=package,
            user=user,
            role=role,
            decision=decision,
            comment=comment,
            fingerprint=fingerprint,
            fingerprint_detail=detail,
        )
        audit_log.audit_signoff(signoff)
        views += signoff_views([signoff])
        result = verdict(
            package, policy=policy, signoffs=views, metrics=metrics, fingerprint=fingerprint, status=before.status
        ).result
        pushes: list[PushOutbox] = []
        acting = user.get_username()
        role_done = any(r.role == role and r.satisfied for r in result.roles)
        if decision == APPROVE and role_done:
            pushes.append(
                PushOutbox.objects.create(
                    package=package,
                    signoff=signoff,
                    kind=PushOutbox.Kind.FLAGS,
                    flags={policy.flag_for(role): "true"},
                    expected_status=ApprovalStatus.PENDING,
                    acting_username=acting,
                )
            )
        decision_row = None
        if result.decision in (APPROVED, REJECTED):
            decision_row, decision_push = _decide(
                package, policy, views, fingerprint, result.decision, user=user, signoff=signoff
            )
            audit_log.audit_decision(decision_row)
            pushes.append(decision_push)
        for push in pushes:
            push_enqueue(push.pk)
        review_state_refresh([package.pk])
    return SignOffResult(signoff=signoff, decision=decision_row, result=result, pushes=pushes)


def _decide(
    package: ModelPackage,
    policy: PolicySpec,
    views: list[SignOffView],
    fingerprint: str,
    status: str,
    *,
    user: Any,
    signoff: SignOff,
) -> tuple[Decision, PushOutbox]:
    current = [v for v in views if v.fingerprint == fingerprint]
    description = approval_description(policy, current, decision=status)
    decision = Decision.objects.create(
        package=package,
        kind=Decision.Kind.POLICY if status == APPROVED else Decision.Kind.REJECTION,
        status=status,
        description=description,
        decided_by=user,
    )
    push = PushOutbox.objects.create(
        package=package,
        decision=decision,
        signoff=signoff,
        kind=PushOutbox.Kind.DECISION,
        target_status=status,
        target_description=description,
        flags=role_flags_for(policy, views, fingerprint),
        expected_status=ApprovalStatus.PENDING,
        acting_username=user.get_username(),
    )
    from registry_app.notifications.enqueue import enqueue_decided

    enqueue_decided(decision.pk)
    return decision, push


def _mark_stale(signoffs: list[SignOff]) -> int:
    if not signoffs:
        return 0
    now = timezone.now()
    for s in signoffs:
        s.stale_at = now
    return SignOff.objects.filter(pk__in=[s.pk for s in signoffs], stale_at__isnull=True).update(stale_at=now)
