"""The queue's "Revalidation" tab (issue 15): the versions due or overdue for revalidation that the
user may sign in one of the policy's roles, most overdue first, with SLA-like badges. Read-only;
a fixed number of queries whatever the number of versions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from registry_app.models import ModelPackage, Revalidation
from registry_app.permissions import VIEWER_ROLE, is_active_user, user_roles
from registry_app.review.queue_base import QueueFilters, page_url, source_query
from registry_app.review.revalidation_clock import OVERDUE, STATE_LABELS
from registry_app.review.revalidation_read import due_clocks, group_policies

__all__ = ["RevalidationItem", "revalidation_items"]


@dataclass(frozen=True)
class RevalidationItem:
    package_id: int
    source_name: str
    group_name: str
    version: int
    state: str  # "due" | "overdue"
    due_at: dt.datetime
    overdue_at: dt.datetime
    policy_name: str
    my_roles: list[str] = field(default_factory=list)  # the policy's roles the user holds
    in_progress: bool = False

    @property
    def badge_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def is_overdue(self) -> bool:
        return self.state == OVERDUE

    @property
    def group_url(self) -> str:
        return page_url("registry:group_detail", self.group_name) + source_query(self.source_name)

    @property
    def review_url(self) -> str:
        path = page_url("registry:package_detail", self.group_name, self.version)
        return f"{path}{source_query(self.source_name)}#revalidation"


def revalidation_items(
    user: Any, filters: QueueFilters | None = None, *, now: dt.datetime | None = None, everyone: bool = False
) -> list[RevalidationItem]:
    """Due and overdue versions for ``user``: those whose policy requires a role the user holds
    (``everyone``: all of them). Queries: the user's roles (cached), the due clocks (6), the
    policies and the open revalidations (8 in all)."""
    roles = {r for r in user_roles(user) if r != VIEWER_ROLE} if is_active_user(user) else set()
    if not roles and not everyone:
        return []
    filters = filters or QueueFilters()
    candidates = ModelPackage.objects.all()
    if filters.group:
        candidates = candidates.filter(group__name=filters.group)
    if filters.tag is not None:
        candidates = filters.tag.apply(candidates, "group__tags")
    due = due_clocks(now=now, candidates=candidates)
    if not due:
        return []
    policies = group_policies({p.group_id: p.group for p, _ in due})
    open_ids = set(
        Revalidation.objects.filter(
            package_id__in=[p.pk for p, _ in due], outcome=Revalidation.Outcome.IN_PROGRESS
        ).values_list("package_id", flat=True)
    )
    items: list[RevalidationItem] = []
    for package, clock in due:
        policy = policies[package.group_id]
        mine = [role for role in policy.required_roles if role in roles]
        if not mine and not everyone:
            continue
        assert clock.due_at is not None and clock.overdue_at is not None
        items.append(
            RevalidationItem(
                package_id=package.pk,
                source_name=package.source.name,
                group_name=package.group.name,
                version=package.version,
                state=clock.state,
                due_at=clock.due_at,
                overdue_at=clock.overdue_at,
                policy_name=policy.name,
                my_roles=mine,
                in_progress=package.pk in open_ids,
            )
        )
    return items
