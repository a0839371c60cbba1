"""The queue's "Findings" tab: open findings (open or in remediation), most recently raised first,
a page at a time (keyset on the id), optionally only mine as owner and only the overdue ones.

Queries: one for the page (package, group, source and owner selected), one COUNT when asked.
Reads only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone

from registry_app.models import Finding
from registry_app.permissions import is_active_user
from registry_app.review.finding_list import is_overdue
from registry_app.review.queue_base import QueuePage, page_url, source_query

__all__ = ["FindingItem", "findings_page"]

PAGE_SIZE = 50


@dataclass(frozen=True)
class FindingItem:
    finding: Finding
    overdue: bool
    carried: bool = False

    @property
    def review_url(self) -> str:
        package = self.finding.package
        group = package.group
        url = page_url("registry:package_detail", group.name, package.version) + source_query(group.source.name)
        return f"{url}#finding-{self.finding.pk}"


def _mine(user: Any) -> Q:
    mine = Q(owner_id=user.pk)
    email = (getattr(user, "email", "") or "").strip()
    return mine | Q(owner_email__iexact=email) if email else mine


def findings_page(
    user: Any,
    *,
    mine: bool = False,
    overdue: bool = False,
    after: str = "",
    limit: int = PAGE_SIZE,
    count: bool = True,
    today: dt.date | None = None,
) -> QueuePage:
    """One page of open findings (``after``: the id of the last one shown)."""
    if not is_active_user(user):
        return QueuePage([], 0 if count else None, "")
    today = today or timezone.localdate()
    rows = Finding.objects.filter(state__in=Finding.OPEN_STATES)
    if mine:
        rows = rows.filter(_mine(user))
    if overdue:
        rows = rows.filter(due_date__lt=today)
    total = rows.count() if count else None
    if after.isdigit() and len(after) <= 18:
        rows = rows.filter(pk__lt=int(after))
    limit = max(1, min(int(limit), 500))
    found = list(rows.select_related("package__group__source", "owner").order_by("-pk")[: limit + 1])
    items = [FindingItem(f, is_overdue(f, today)) for f in found[:limit]]
    return QueuePage(items, total, str(items[-1].finding.pk) if len(found) > limit else "")
