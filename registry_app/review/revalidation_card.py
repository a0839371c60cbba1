"""The revalidation card of a package's review page (issue 15): the clock, the open revalidation
and its roles, what the user may do, and the history. Read-only; a fixed number of queries."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch

from registry_app.models import ModelPackage, Revalidation, RevalidationSignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import COMPLIANCE_ROLE, can_revoke, is_active_user, user_roles
from registry_app.review.policies import policy_for_group
from registry_app.review.policy import (
    PENDING_MANUAL_APPROVAL,
    PolicySpec,
    RoleProgress,
    SignOffNotAllowed,
    SignOffView,
    check_can_sign,
    evaluate,
)
from registry_app.review.revalidation_clock import NOT_SUBJECT, RevalidationClock
from registry_app.review.revalidation_read import revalidation_clocks
from registry_app.review.state import is_registrant, package_fingerprint, signoff_view

__all__ = ["HISTORY_SHOWN", "RevalidationCard", "revalidation_card", "revalidation_outcome", "revalidation_views"]

HISTORY_SHOWN = 10


def revalidation_views(signoffs: list[RevalidationSignOff]) -> list[SignOffView]:
    """Policy-engine views of revalidation sign-offs (``user`` selected with them); a stale one never counts."""
    return [
        signoff_view(
            s.user_id, s.user.get_username(), s.role, s.decision, s.fingerprint, s.stale_at, s.created_at, s.comment
        )
        for s in signoffs
    ]


def _roles_only(policy: PolicySpec) -> PolicySpec:
    return dataclasses.replace(policy, gates=(), require_card_approved=False, accept_automated_approvals=None)


def revalidation_progress(
    policy: PolicySpec, views: list[SignOffView], fingerprint: str
) -> tuple[str, list[RoleProgress]]:
    """``(Approved | Rejected | Pending, roles)``: only the sign-offs count. Gates and the card were the
    first review's evidence and are on the page again, but a revalidation is the reviewers' judgement."""
    result = evaluate(
        _roles_only(policy), signoffs=views, metrics=[], card_status=None, current_fingerprint=fingerprint
    )
    return result.decision, result.roles


def revalidation_outcome(policy: PolicySpec, views: list[SignOffView], fingerprint: str) -> str:
    return revalidation_progress(policy, views, fingerprint)[0]


@dataclass
class RevalidationCard:
    policy: PolicySpec
    clock: RevalidationClock
    open: Revalidation | None
    roles: list[RoleProgress]
    signable_roles: list[str]
    cannot_sign_reason: str
    can_start: bool
    can_revoke: bool  # the latest revalidation failed and the user is compliance
    history: list[Revalidation] = field(default_factory=list)

    @property
    def shown(self) -> bool:
        return self.policy.revalidate_every_days is not None or bool(self.history)


def _signable(
    policy: PolicySpec, package: ModelPackage, user: Any, views: list[SignOffView], fingerprint: str
) -> tuple[list[str], str]:
    held = user_roles(user)
    registrant = is_registrant(package, user)
    allowed: list[str] = []
    refusals: list[str] = []
    for role in policy.required_roles:
        try:
            check_can_sign(
                policy,
                user_id=user.pk,
                username=user.get_username(),
                user_roles=held,
                role=role,
                signoffs=views,
                current_fingerprint=fingerprint,
                registered_by_user_id=user.pk if registrant else None,
                package_status=PENDING_MANUAL_APPROVAL,
                package_deleted=False,
            )
            allowed.append(role)
        except SignOffNotAllowed as exc:
            if role in held or exc.code != "role_not_held":
                refusals.append(exc.message)
    if allowed:
        return allowed, ""
    return [], refusals[0] if refusals else f"You hold none of the roles policy {policy.name!r} requires."


def revalidation_card(
    package: ModelPackage, user: Any, *, now: dt.datetime | None = None, policy: PolicySpec | None = None
) -> RevalidationCard:
    """The card for ``package`` as ``user`` sees it at ``now``. Queries: the policy (unless given), the
    revalidations (and their sign-offs when there are any); for an Approved version also the clock (5)
    and, while a revalidation is open or due, the fingerprint's reports."""
    policy = policy or policy_for_group(package.group)
    if package.approval_status == ApprovalStatus.APPROVED and package.deleted_at is None:
        clock = revalidation_clocks([package], now=now, policies={package.group_id: policy})[package.pk]
    else:
        clock = RevalidationClock(NOT_SUBJECT, policy.revalidate_every_days, policy.revalidation_grace_days)
    signoffs = RevalidationSignOff.objects.select_related("user").order_by("created_at", "pk")
    history = list(
        Revalidation.objects.filter(package=package)
        .select_related("started_by", "policy_version")
        .prefetch_related(Prefetch("signoffs", queryset=signoffs))
        .order_by("-started_at", "-pk")[:HISTORY_SHOWN]
    )
    current = next((r for r in history if r.outcome == Revalidation.Outcome.IN_PROGRESS), None)
    approved = package.approval_status == ApprovalStatus.APPROVED and package.deleted_at is None
    roles: list[RoleProgress] = []
    signable: list[str] = []
    reason = ""
    if approved and (current is not None or clock.is_due) and is_active_user(user):
        fingerprint, _ = package_fingerprint(package, policy=policy)
        views = revalidation_views(list(current.signoffs.all())) if current is not None else []
        _, roles = revalidation_progress(policy, views, fingerprint)
        signable, reason = _signable(policy, package, user, views, fingerprint)
    held = user_roles(user) if is_active_user(user) else set()
    can_start = approved and current is None and (COMPLIANCE_ROLE in held or bool(getattr(user, "is_staff", False)))
    failed = bool(history) and history[0].outcome == Revalidation.Outcome.FAILED
    return RevalidationCard(
        policy=policy,
        clock=clock,
        open=current,
        roles=roles,
        signable_roles=signable,
        cannot_sign_reason=reason,
        can_start=can_start and is_active_user(user),
        can_revoke=failed and can_revoke(user, package),
        history=history,
    )
