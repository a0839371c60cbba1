"""The bypasses page (a read): packages whose approval status was set outside the dashboard.

The rows are written by ``outside_decisions``; this module only lists and exports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from registry_app.audit.paging import PAGE_SIZE, Cursor, int_ident
from registry_app.audit.values import iso
from registry_app.models import OutsideDecision

__all__ = ["OutsideDecisionPage", "outside_decision_row", "outside_decisions_page", "outside_decisions_stream"]


@dataclass
class OutsideDecisionPage:
    rows: list[OutsideDecision]
    older: Cursor | None
    to_status: str


def _outside_decisions(to_status: str) -> QuerySet[OutsideDecision]:
    qs = OutsideDecision.objects.select_related("package__group__source", "event")
    if to_status:
        qs = qs.filter(to_status=to_status)
    return qs


def outside_decisions_page(
    *, to_status: str = "", before: Cursor | None = None, limit: int = PAGE_SIZE
) -> OutsideDecisionPage:
    """Packages whose status was set outside the dashboard, newest observation first. One query."""
    qs = _outside_decisions(to_status)
    if before is not None:
        qs = qs.filter(observed_at__lte=before.at).filter(
            Q(observed_at__lt=before.at) | Q(observed_at=before.at, pk__lt=int(before.ident))
        )
    rows = list(qs.order_by("-observed_at", "-pk")[: limit + 1])
    older = None
    if len(rows) > limit:
        rows = rows[:limit]
        older = Cursor(rows[-1].observed_at, "outside", int_ident(rows[-1].pk))
    return OutsideDecisionPage(rows, older, to_status)


def outside_decision_row(row: OutsideDecision) -> dict[str, Any]:
    return {
        "package_arn": row.package.arn,
        "group": row.package.group.name,
        "version": row.package.version,
        "from_status": row.from_status,
        "to_status": row.to_status,
        "observed_at": iso(row.observed_at),
        "changed_at": iso(row.changed_at),
        "actor_name": row.actor_name,
        "actor_arn": row.actor_arn,
        "cloudtrail_event_id": row.event.event_id if row.event else "",
        "notified_at": iso(row.notified_at),
        "evidence_id": f"outside_decision:{row.pk}",
    }


def outside_decisions_stream(*, to_status: str = "") -> Iterator[OutsideDecision]:
    return _outside_decisions(to_status).order_by("-observed_at", "-pk").iterator(chunk_size=500)
