"""Findings as export rows: the auditor packs' ``findings.json`` / ``findings.csv`` (reads only)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from registry_app.models import Finding

FINDING_COLUMNS = (
    "ref",
    "group",
    "version",
    "title",
    "severity",
    "blocks_approval",
    "state",
    "owner",
    "owner_email",
    "due_date",
    "raised_by",
    "raised_at",
    "policy_version",
    "signoff",
    "conditions_of",
    "closed_by",
    "closed_at",
    "closing_comment",
    "evidence_url",
    "risk_justification",
    "description",
)


def _name(user: Any) -> str:
    return user.get_username() if user is not None else ""


def findings_for(queryset: QuerySet[Finding]) -> QuerySet[Finding]:
    """The rows with what ``finding_rows`` reads selected and prefetched (3 queries in all)."""
    return (
        queryset.select_related("package__group", "owner", "raised_by", "closed_by", "policy_version")
        .prefetch_related("condition_of")
        .order_by("raised_at", "pk")
    )


def finding_rows(findings: Iterable[Finding]) -> Iterator[dict[str, Any]]:
    for f in findings:
        yield {
            "ref": f.ref,
            "group": f.package.group.name,
            "version": f.package.version,
            "title": f.title,
            "severity": f.severity,
            "blocks_approval": f.blocks_approval,
            "state": f.state,
            "owner": _name(f.owner),
            "owner_email": f.owner_email,
            "due_date": f.due_date.isoformat() if f.due_date else "",
            "raised_by": _name(f.raised_by),
            "raised_at": f.raised_at.isoformat(),
            "policy_version": f.policy_version.label if f.policy_version is not None else "built-in default",
            "signoff": f.signoff_id or "",
            "conditions_of": ",".join(str(s.pk) for s in f.condition_of.all()),
            "closed_by": _name(f.closed_by),
            "closed_at": f.closed_at.isoformat() if f.closed_at else "",
            "closing_comment": f.closing_comment,
            "evidence_url": f.evidence_url,
            "risk_justification": f.risk_justification,
            "description": f.description,
        }
