"""Demo findings (``stage_demo_scenes``): open, overdue and closed findings, and an approve-with-conditions.

Made through the services, as the review page makes them (``review.findings``, ``signoff_create``), on
pending versions the other scenes leave alone. Idempotent: nothing is made when the demo findings exist.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry_app.models import Finding, ModelPackage
from registry_app.models.registry import ApprovalStatus
from registry_app.review.findings import ConditionInput, finding_close, finding_raise, finding_remediate
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.signoffs import signoff_create

__all__ = ["seed_findings"]

log = logging.getLogger(__name__)

TAKEN = {("churn-propensity", 4), ("churn-propensity", 1), ("demand-forecast", 4)}  # demo_scenes' packages
BLOCKING_TITLE = "PSI drift on age above 0.25 in the latest scoring window"


def _pending() -> list[ModelPackage]:
    packages = (
        ModelPackage.objects.select_related("group__source")
        .filter(approval_status=ApprovalStatus.PENDING, deleted_at__isnull=True, group__deleted_at__isnull=True)
        .order_by("group__name", "version")
    )
    return [p for p in packages if (p.group.name, p.version) not in TAKEN and not p.signoffs.exists()]


def _approve_with_conditions(candidates: list[ModelPackage], users: dict[str, Any], today: dt.date) -> str:
    """On the first candidate fairness may approve (no failing gate, not the registrant): an approval
    with a monitoring condition. The version stays pending for the other roles (the demo's SLA figures
    keep their versions), so a compliance officer can decide it live and see the conditions pushed."""
    owner = users["mlead"]
    for package in candidates:
        try:
            with transaction.atomic():  # a refusal leaves nothing behind
                result = signoff_create(
                    user=users["fairness"],
                    package_id=package.pk,
                    role="fairness",
                    decision="approve",
                    comment="Fair across the monitored facets; approved with a monitoring condition.",
                    conditions=[
                        ConditionInput(
                            title="Monitor DPPL by age band monthly",
                            severity="medium",
                            owner_id=owner.pk,
                            due_date=today + dt.timedelta(days=90),
                        )
                    ],
                )
        except SignOffNotAllowed:
            continue
        refs = ", ".join(f.ref for f in result.signoff.conditions.all())
        return f"approve with conditions: {package.group.name} v{package.version} by fairness ({refs})"
    return ""


def _on_approved(users: dict[str, Any], today: dt.date) -> str:
    """An open finding on the newest approved version of a group: "approved, with open findings"."""
    package = (
        ModelPackage.objects.select_related("group")
        .filter(approval_status=ApprovalStatus.APPROVED, deleted_at__isnull=True, group__deleted_at__isnull=True)
        .exclude(decisions__kind="revocation")
        .order_by("group__name", "-version")
        .first()
    )
    if package is None:
        return ""
    finding = finding_raise(
        user=users["compliance"],
        package_id=package.pk,
        title="Annual fairness re-test not yet scheduled",
        severity="medium",
        owner_email="risk-models@example.com",
        due_date=today + dt.timedelta(days=45),
    )
    return f"{finding.ref} open on approved {package.group.name} v{package.version}"


def seed_findings(users: dict[str, Any]) -> list[str]:
    """Raise the demo findings; returns summary lines (empty when done before or impossible)."""
    if Finding.objects.filter(title=BLOCKING_TITLE).exists():
        return []
    fair, comp, mlead = users.get("fairness"), users.get("compliance"), users.get("mlead")
    pending = _pending()
    if fair is None or comp is None or mlead is None or len(pending) < 2:
        return []
    today = timezone.localdate()
    lines: list[str] = []
    try:
        blocked = pending[0]
        high = finding_raise(
            user=fair,
            package_id=blocked.pk,
            title=BLOCKING_TITLE,
            description="Population stability index of 'age' is 0.31 against the training data.",
            severity="high",
            owner_id=mlead.pk,
            due_date=today + dt.timedelta(days=2),
        )
        overdue = finding_raise(
            user=comp,
            package_id=blocked.pk,
            title="Document the fallback rule for thin-file applicants",
            severity="medium",
            owner_email="risk-models@example.com",
            due_date=today + dt.timedelta(days=1),
        )
        finding_remediate(user=comp, finding_id=overdue.pk)
        # Raised weeks ago, now past its due date (a service refuses a past due date).
        Finding.objects.filter(pk=overdue.pk).update(
            due_date=today - dt.timedelta(days=9), raised_at=timezone.now() - dt.timedelta(days=30)
        )
        closed = finding_raise(
            user=mlead,
            package_id=blocked.pk,
            title="Evaluation report missing the holdout split",
            severity="low",
            owner_id=mlead.pk,
            due_date=today + dt.timedelta(days=5),
        )
        finding_close(
            user=comp,
            finding_id=closed.pk,
            comment="Holdout metrics added to the evaluation report.",
            evidence_url="https://wiki.example.com/models/evaluation-holdout",
        )
        lines.append(
            f"findings on {blocked.group.name} v{blocked.version}: {high.ref} (high, blocking), "
            f"{overdue.ref} (overdue), {closed.ref} (closed with evidence)"
        )
        lines += [
            line for line in (_approve_with_conditions(pending[1:], users, today), _on_approved(users, today)) if line
        ]
    except SignOffNotAllowed as exc:  # a demo registry shaped otherwise: say so, never stop the demo
        log.warning("demo findings skipped: %s", exc.message)
    return [f"findings: {line}" for line in lines]
