"""Recording sign-offs, and what follows from them: role flags, decisions and their pushes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from registry_app.audit import log as audit_log
from registry_app.models import Decision, ModelPackage, PolicyException, PolicyVersion, PushOutbox, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import is_active_user, user_roles
from registry_app.review.finding_list import blocking_by_package, conditions_of, conditions_text, finding_refusal
from registry_app.review.findings import ConditionInput, conditions_attach
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
        findings=blocking_by_package([package]).get(package.pk, []),
    )
    return ReviewNow(policy, fingerprint, detail, existing, views, metrics, exceptions, waived, state, version)


# --------------------------------------------------------------------------------------------- services


def signoff_create(
    *,
    user: Any,
    package_id: int,
    role: str,
    decision: str,
    comment: str,
    conditions: Sequence[ConditionInput] = (),
    condition_refs: Sequence[int] = (),
) -> SignOffResult:
    """Record ``user``'s sign-off in ``role`` and act on the policy's verdict.

    One transaction, under the package row lock: re-read the sign-offs, fingerprint the
    package, ``check_can_sign`` (separation of duties, registrant, decided/deleted package,
    role held and required), create the SignOff, then

    * an approval that completes its role queues a flags push (``{flag: "true"}``);
    * when the policy now says Approved or Rejected: a Decision with the ApprovalDescription and a
      decision push (target status, description, every satisfied role's flag).

    An approval may carry conditions (approve with conditions): new findings (``conditions``,
    created here and linked to the sign-off) and open findings it references (``condition_refs``);
    the approval description lists them. An approval is refused while a gate fails or an open
    blocking finding applies (``finding_list.finding_refusal``).

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
    if decision != APPROVE and (conditions or condition_refs):
        raise SignOffNotAllowed("Only an approval can carry conditions.", code="invalid_conditions")
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
        if decision == APPROVE and before.blocking_findings:
            raise SignOffNotAllowed(finding_refusal(before.blocking_findings), code="finding_blocked")
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
        if conditions or condition_refs:
            conditions_attach(
                user=user, package=package, policy=policy, signoff=signoff, new=conditions, refs=condition_refs
            )
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

    def head(limit: int) -> str:
        if not note:
            return approval_description(policy, current, decision=status, limit=limit)
        short = note if len(note) <= limit // 2 else note[: limit // 2 - 1].rstrip() + "…"
        return f"{approval_description(policy, current, decision=status, limit=limit - len(short) - 2)}. {short}"

    conditions = conditions_of([package.pk]).get(package.pk, []) if status == APPROVED else []
    description = _with_conditions(head, conditions, _review_url(package)) if conditions else head(DESCRIPTION_LIMIT)
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


def _review_url(package: ModelPackage) -> str:
    path = reverse("registry:package_detail", args=[package.group.name, package.version])
    return f"{settings.SITE_URL}{path}"


CONDITIONS_RESERVE = 300  # the approval text gives way down to this much room for its conditions


def _with_conditions(head: Any, conditions: list[Any], url: str) -> str:
    """``head`` (the approval text, by length limit) then the conditions, within ``DESCRIPTION_LIMIT``:
    the conditions are shortened first; only when they would get less than ``CONDITIONS_RESERVE``
    does the approval text give way too."""
    full = conditions_text(conditions, url, DESCRIPTION_LIMIT)
    text = head(DESCRIPTION_LIMIT)
    room = DESCRIPTION_LIMIT - len(text) - 1
    if room < min(len(full), CONDITIONS_RESERVE):
        text = head(DESCRIPTION_LIMIT - min(len(full), CONDITIONS_RESERVE) - 1)
        room = DESCRIPTION_LIMIT - len(text) - 1
    tail = conditions_text(conditions, url, room)
    return f"{text} {tail}" if tail else text


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
