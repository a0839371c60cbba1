"""Recording sign-offs, and what follows from them: role flags, decisions and their pushes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.audit import log as audit_log
from registry_app.models import Decision, ModelPackage, PolicyException, PolicyVersion, PushOutbox, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import is_active_user, user_roles
from registry_app.review.outbox import push_enqueue
from registry_app.review.policy import (
    APPROVE,
    APPROVED,
    DESCRIPTION_LIMIT,
    REJECT,
    REJECTED,
    GateResult,
    MetricObservation,
    PolicyResult,
    PolicySpec,
    SignOffNotAllowed,
    SignOffView,
    approval_description,
    role_flags_for,
)
from registry_app.review.policy_versions import policy_and_version
from registry_app.review.queue_state import review_state_refresh
from registry_app.review.state import (
    Verdict,
    check_signoff,
    effective_status,
    exception_gates,
    is_registrant,
    metric_observations,
    package_fingerprint,
    signoff_views,
    verdict,
)
from registry_app.review.status import gate_shortfall

__all__ = [
    "MAX_COMMENT",
    "SignOffResult",
    "current_exceptions",
    "gate_refusal",
    "policy_decide",
    "ReviewNow",
    "lock_package",
    "review_now",
    "signoff_create",
    "signoff_withdraw",
]

MAX_COMMENT = 4000


@dataclass
class SignOffResult:
    signoff: SignOff
    decision: Decision | None
    result: PolicyResult
    pushes: list[PushOutbox]


# --------------------------------------------------------------------------------------------- helpers


def lock_package(package_id: int) -> ModelPackage:
    """The package row, locked for the caller's transaction; ``SignOffNotAllowed`` when there is none."""
    try:
        return ModelPackage.objects.select_for_update().get(pk=package_id)
    except (ModelPackage.DoesNotExist, ValueError, TypeError) as exc:
        raise SignOffNotAllowed("There is no such model package.", code="not_found") from exc


@dataclass
class ReviewNow:
    """A locked package's review as the sign-off services decide on it: read once, under the lock."""

    policy: PolicySpec
    fingerprint: str
    detail: dict[str, Any]
    existing: list[SignOff]  # the current (not withdrawn) sign-offs, oldest first
    views: list[SignOffView]
    metrics: list[MetricObservation]
    exceptions: list[PolicyException]
    waived: frozenset[str]
    state: Verdict
    version: PolicyVersion | None = None  # the policy's version in force (None: the built-in default)


def review_now(package: ModelPackage) -> ReviewNow:
    """The policy, fingerprint, sign-offs, metrics, exceptions and verdict of ``package`` (locked by
    the caller): the same computation as the review page's."""
    policy, version = policy_and_version(package.group)
    fingerprint, detail = package_fingerprint(package, policy=policy)
    existing = list(
        SignOff.objects.filter(package=package, withdrawn_at__isnull=True)
        .select_related("user")
        .order_by("created_at", "pk")
    )
    views = signoff_views(existing)
    metrics = metric_observations(package)
    exceptions = current_exceptions(package, fingerprint)
    waived = exception_gates(exceptions, fingerprint)
    state = verdict(
        package,
        policy=policy,
        signoffs=views,
        metrics=metrics,
        fingerprint=fingerprint,
        status=effective_status(package),
        waived=waived,
    )
    return ReviewNow(policy, fingerprint, detail, existing, views, metrics, exceptions, waived, state, version)


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
        package = lock_package(package_id)
        now = review_now(package)
        policy, fingerprint, detail, existing = now.policy, now.fingerprint, now.detail, now.existing
        views, metrics, exceptions, waived, before = now.views, now.metrics, now.exceptions, now.waived, now.state
        check_signoff(before, user, user_roles(user), role, registrant=is_registrant(package, user))
        if decision == APPROVE and before.blocking:
            raise SignOffNotAllowed(gate_refusal(before.blocking), code="gate_blocked")
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
            policy_version=now.version,
        )
        audit_log.audit_signoff(signoff)
        views += signoff_views([signoff])
        result = verdict(
            package,
            policy=policy,
            signoffs=views,
            metrics=metrics,
            fingerprint=fingerprint,
            status=before.status,
            waived=waived,
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
            decision_row, decision_push = policy_decide(
                package,
                policy,
                views,
                fingerprint,
                result.decision,
                user=user,
                signoff=signoff,
                exceptions=exceptions,
                version=now.version,
            )
            audit_log.audit_decision(decision_row)
            pushes.append(decision_push)
        for push in pushes:
            push_enqueue(push.pk)
        review_state_refresh([package.pk])
    return SignOffResult(signoff=signoff, decision=decision_row, result=result, pushes=pushes)


def gate_refusal(blocking: list[GateResult]) -> str:
    """Why an approval is refused: which gates fail, observed vs required, and what may be done instead."""
    gates = "; ".join(gate_shortfall(g) for g in blocking)
    return (
        f"Approval is blocked by policy: {gates}. You may reject, or a compliance officer may record a "
        "justified policy exception, after which approvals count again."
    )


def current_exceptions(package: ModelPackage, fingerprint: str) -> list[PolicyException]:
    """The package's policy exceptions recorded on the current content (newest first; 1 query)."""
    rows = PolicyException.objects.filter(package=package, fingerprint=fingerprint).select_related("recorded_by")
    return list(rows.order_by("-created_at", "-pk"))


def exception_note(exceptions: list[PolicyException]) -> str:
    """`` Policy exception by <user> (<date>) for <gates>: <justification>`` for the approval description."""
    notes = []
    for e in exceptions:
        gates = ", ".join(str(g.get("shortfall") or g.get("gate")) for g in e.gates if isinstance(g, dict))
        who = e.recorded_by.get_username()
        notes.append(f"Policy exception by {who} ({e.created_at:%Y-%m-%d}) for {gates}: {e.justification}")
    return " ".join(notes)


def policy_decide(
    package: ModelPackage,
    policy: PolicySpec,
    views: list[SignOffView],
    fingerprint: str,
    status: str,
    *,
    user: Any,
    signoff: SignOff | None,
    exceptions: Sequence[PolicyException] = (),
    version: PolicyVersion | None = None,
) -> tuple[Decision, PushOutbox]:
    """The Decision the policy reached (recording ``version``, the policy's version in force) and its
    push (caller's transaction). An approval under a
    policy exception says so in its description, which stays within ``DESCRIPTION_LIMIT``
    (AWS's 1,024 characters): the exception part is shortened first to half of it."""
    current = [v for v in views if v.fingerprint == fingerprint]
    note = exception_note(list(exceptions)) if status == APPROVED else ""
    if note:
        note = note if len(note) <= DESCRIPTION_LIMIT // 2 else note[: DESCRIPTION_LIMIT // 2 - 1].rstrip() + "…"
        description = approval_description(policy, current, decision=status, limit=DESCRIPTION_LIMIT - len(note) - 2)
        description = f"{description}. {note}"
    else:
        description = approval_description(policy, current, decision=status)
    decision = Decision.objects.create(
        package=package,
        kind=Decision.Kind.POLICY if status == APPROVED else Decision.Kind.REJECTION,
        status=status,
        description=description,
        decided_by=user,
        policy_version=version,
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


def signoff_withdraw(*, user: Any, package_id: int, signoff_id: int) -> SignOff:
    """Withdraw ``user``'s own current sign-off on a package still under review.

    One transaction under the package row lock: refuse unless the sign-off is the user's, current
    (not stale, not already withdrawn) and the package is live, pending and undecided (no decision
    of the dashboard on its way); set ``withdrawn_at``, audit ``signoff.withdrawn``, withdraw the
    role's flag from the registry when the role no longer has its approvals (a flags push sent
    after commit), and refresh the stored review state. Raises ``SignOffNotAllowed``.
    """
    if not is_active_user(user):
        raise SignOffNotAllowed("Sign in with an active account to withdraw a sign-off.", code="not_authenticated")
    with transaction.atomic():
        package = lock_package(package_id)
        signoff = SignOff.objects.filter(pk=signoff_id, package=package).select_related("user").first()
        if signoff is None:
            raise SignOffNotAllowed("There is no such sign-off on this model package.", code="not_found")
        if signoff.user_id != user.pk:
            raise SignOffNotAllowed("You can withdraw only your own sign-off.", code="forbidden")
        if signoff.withdrawn_at is not None:
            raise SignOffNotAllowed("This sign-off was already withdrawn.", code="already_withdrawn")
        now = review_now(package)
        policy, fingerprint, views, state = now.policy, now.fingerprint, now.views, now.state
        if state.deleted or state.decided:
            raise SignOffNotAllowed(
                f"This model package is already decided ({state.outcome}); sign-offs can no longer be withdrawn.",
                code="already_decided",
            )
        if signoff.stale_at is not None or signoff.fingerprint != fingerprint:
            raise SignOffNotAllowed("This sign-off is stale: it already counts for nothing.", code="stale")
        flags_before = role_flags_for(policy, views, fingerprint)
        signoff.withdrawn_at = timezone.now()
        SignOff.objects.filter(pk=signoff.pk).update(withdrawn_at=signoff.withdrawn_at)
        audit_log.audit_append(
            "signoff.withdrawn",
            actor=user,
            via=audit_log.Via.WEB,
            subject=signoff,
            package=package.pk,
            before={"role": signoff.role, "decision": signoff.decision, "fingerprint": signoff.fingerprint},
            after={"withdrawn_at": signoff.withdrawn_at.isoformat()},
            message=f"{user.get_username()} withdrew their {signoff.decision} sign-off as {signoff.role}",
        )
        remaining = [v for v in views if not (v.user_id == signoff.user_id and v.role == signoff.role)]
        flags_after = role_flags_for(policy, remaining, fingerprint)
        lost = {flag: None for flag in flags_before if flag not in flags_after}
        if lost:
            push = PushOutbox.objects.create(
                package=package,
                kind=PushOutbox.Kind.FLAGS,
                flags=lost,
                expected_status=ApprovalStatus.PENDING,
                acting_username=user.get_username(),
            )
            push_enqueue(push.pk)
        review_state_refresh([package.pk])
    return signoff
