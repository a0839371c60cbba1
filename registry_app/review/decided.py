"""The "Recently decided" tab: the dashboard's decisions of the last ``DECIDED_DAYS`` days, newest
first, a page at a time (keyset on ``(created_at, id)``, the ``decision_recent`` index).

One query per page: the decisions with package, group, source, user and policy version, and their newest push's
state and attempts selected with them; one for the approvals' conditions (findings); plus one COUNT
for the total.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from registry_app.models import Decision, ModelPackage, PushOutbox
from registry_app.review.finding_list import conditions_of
from registry_app.review.queue_base import LIST_DEFERRED, QueueFilters, QueuePage, page_url, source_query

__all__ = ["DECIDED_DAYS", "DecidedItem", "decided_page"]

DECIDED_DAYS = 30


@dataclass(frozen=True)
class DecidedItem:
    """One row of "Recently decided": the decision (package, group, source and user selected) and its newest push."""

    decision: Decision
    push: PushOutbox | None
    cursor: str
    conditions: tuple[str, ...] = ()  # an approval's conditions (``F-12`` refs)

    @property
    def package(self) -> ModelPackage:
        return self.decision.package

    @property
    def group_url(self) -> str:
        group = self.decision.package.group
        return page_url("registry:group_detail", group.name) + source_query(group.source.name)

    @property
    def package_url(self) -> str:
        package = self.decision.package
        return page_url("registry:package_detail", package.group.name, package.version) + source_query(
            package.group.source.name
        )


_CURSOR_TIME = "%Y%m%d%H%M%S%f"


def _decided_cursor(after: str) -> tuple[dt.datetime, int] | None:
    """``<UTC time, 20 digits>-<decision id>`` of the last row shown; anything else: the first page."""
    moment, _, pk = after.partition("-")
    if len(moment) != 20 or not moment.isdigit() or not pk.isdigit() or len(pk) > 19:
        return None
    try:
        return dt.datetime.strptime(moment, _CURSOR_TIME).replace(tzinfo=dt.UTC), int(pk)
    except ValueError:
        return None


def decided_page(filters: QueueFilters, after: str, limit: int, count: bool) -> QueuePage:
    since = timezone.now() - dt.timedelta(days=DECIDED_DAYS)
    newest = PushOutbox.objects.filter(decision=OuterRef("pk")).order_by("-created_at")
    decisions = (
        Decision.objects.filter(created_at__gte=since)
        .select_related("package__group__source", "decided_by", "policy_version")
        .defer(*(f"package__{name}" for name in LIST_DEFERRED))
        .annotate(
            push_state=Subquery(newest.values("state")[:1]), push_attempts=Subquery(newest.values("attempts")[:1])
        )
    )
    if filters.group:
        decisions = decisions.filter(package__group__name=filters.group)
    if filters.tag is not None:
        decisions = filters.tag.apply(decisions, "package__group__tags")
    total = decisions.count() if count else None
    cursor = _decided_cursor(after)
    if cursor is not None:
        at, before_pk = cursor
        decisions = decisions.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=before_pk))
    rows = list(decisions.order_by("-created_at", "-pk")[: limit + 1])
    approved = [d.package_id for d in rows[:limit] if d.kind == Decision.Kind.POLICY]
    conditions = conditions_of(approved)  # one query for the page (none without approvals)
    items = []
    for decision in rows[:limit]:
        state = decision.push_state  # type: ignore[attr-defined]
        push = PushOutbox(state=state, attempts=decision.push_attempts) if state else None  # type: ignore[attr-defined]
        moment = decision.created_at.astimezone(dt.UTC).strftime(_CURSOR_TIME)
        refs = (
            tuple(f.ref for f in conditions.get(decision.package_id, []))
            if decision.kind == Decision.Kind.POLICY
            else ()
        )
        items.append(DecidedItem(decision, push, f"{moment}-{decision.pk}", refs))
    return QueuePage(items, total, items[-1].cursor if len(rows) > limit else "")
