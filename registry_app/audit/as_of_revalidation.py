"""The as-of answer's revalidation fact (issue 15): whether the version serving at a time was within
its revalidation period then, computed with the clock at that time from the approvals and passed
revalidations recorded by then (``review.revalidation_read.revalidation_clock_at``)."""

from __future__ import annotations

import datetime as dt

from registry_app.audit.as_of_evidence import Evidence, Fact
from registry_app.audit.values import iso
from registry_app.models import Decision, ModelPackage, Revalidation
from registry_app.models.registry import ApprovalStatus
from registry_app.review.revalidation_clock import CURRENT, DUE, OVERDUE
from registry_app.review.revalidation_read import revalidation_clock_at

__all__ = ["revalidation_fact"]


def _day(at: dt.datetime | None) -> str:
    return at.date().isoformat() if at else "?"


def revalidation_fact(package: ModelPackage, at: dt.datetime) -> Fact:
    """``revalidation``: within its period / due / overdue at ``at``, or why it cannot be said. 5 queries.
    The policy is the version in force at ``at`` (``policy_versions.policy_at``)."""
    clock = revalidation_clock_at(package, at, serving=True)
    evidence: list[Evidence] = []
    decision = (
        Decision.objects.filter(package=package, status=ApprovalStatus.APPROVED, created_at__lte=at)
        .order_by("-created_at", "-pk")
        .first()
    )
    if decision is not None:
        evidence.append(Evidence(f"decision:{decision.pk}", decision.created_at, "approval"))
    passed = (
        Revalidation.objects.filter(package=package, outcome=Revalidation.Outcome.PASSED, completed_at__lte=at)
        .order_by("-completed_at", "-pk")
        .first()
    )
    if passed is not None:
        evidence.append(Evidence(f"revalidation:{passed.pk}", passed.completed_at, "last passed revalidation"))
    if clock.every_days is None:
        return Fact("revalidation", "not required: the policy sets no periodic revalidation", evidence)
    if clock.approved_at is None:
        return Fact(
            "revalidation",
            "unknown",
            evidence,
            missing=f"No approval of this version recorded by {iso(at)}: its revalidation period cannot be computed.",
        )
    period = f"every {clock.every_days} days, {clock.grace_days} days' grace"
    last = f"last revalidated {_day(clock.last_revalidated_at)}" if clock.last_revalidated_at else "never revalidated"
    due, grace_end = _day(clock.due_at), _day(clock.overdue_at)
    if clock.state == CURRENT:
        value = f"within its revalidation period ({period}; approved {_day(clock.approved_at)}, {last}; due {due})"
    elif clock.state == DUE:
        value = f"past its revalidation date {due}, within the grace period until {grace_end} ({period}; {last})"
    else:
        assert clock.state == OVERDUE
        value = f"OVERDUE for revalidation: due {due}, grace ended {grace_end} ({period}; {last})"
    return Fact("revalidation", value, evidence)
