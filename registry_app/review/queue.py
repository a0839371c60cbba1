"""Review queues: what waits for my sign-off, everything pending, and what was recently decided.

The pending tabs read only the stored review state (``ReviewState``, kept exact by
``review.queue_state`` in the transaction of every change): one indexed query per page, keyset
paginated on ``queue_key`` (oldest first), ``PAGE_SIZE`` rows, plus one COUNT for the total. The
rows are the same for everyone; what is per person is matched when reading:

* "mine": a required role I hold still misses approvals (``ReviewStateRole.missing``), I hold no
  current sign-off on the package (``signers``) and did not register it (``registrants``): exactly
  what ``state.signable_roles`` allows (separation of duties, registrant, role complete, decided);
* ``signable_roles`` / ``signed_by_me`` of each row, from the same columns and my roles.

``queue_counts`` (the nav) is one ``COUNT ... GROUP BY role`` over the role rows. "decided" reads
the decisions (with package, group, source, user and the newest push's state) in one query.
Queries per page: the user's roles (cached on the user for the request), the page, the count.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from registry_app.models import (
    ModelPackage,
    ModelPackageGroup,
    PushOutbox,
    ReviewState,
    ReviewStateCheck,
    ReviewStateRole,
)
from registry_app.models.registry import ApprovalStatus
from registry_app.permissions import SIGNOFF_ROLES, VIEWER_ROLE, user_roles
from registry_app.review.decided import DECIDED_DAYS, DecidedItem, decided_page
from registry_app.review.queue_base import LIST_DEFERRED, QueueFilters, QueuePage, TagFilter, page_url, source_query
from registry_app.review.revalidation_queue import revalidation_items
from registry_app.review.review_rows import registrant_token, signer_token
from registry_app.review.state import PENDING_OUTCOME, effective_status
from registry_app.review.status import VersionStatus, status_of_row

__all__ = [
    "DECIDED_DAYS",
    "PAGE_SIZE",
    "SLA_LABELS",
    "SLA_STATES",
    "TABS",
    "DecidedItem",
    "QueueFilters",
    "QueueItem",
    "QueuePage",
    "TagFilter",
    "archive_preview",
    "push_with_package",
    "queue_cache_clear",
    "queue_counts",
    "queue_for_user",
    "queue_page",
    "review_figures",
]

TABS: dict[str, str] = {
    "mine": "My queue",
    "all": "All pending",
    "decided": "Recently decided",
    "revalidation": "Revalidation",  # issue 15: due and overdue versions (review/revalidation_queue.py)
}
SLA_LABELS: dict[str, str] = {"ok": "OK", "due_soon": "Due soon", "overdue": "Overdue"}
SLA_STATES: tuple[str, ...] = tuple(SLA_LABELS)
PAGE_SIZE = 50
log = logging.getLogger(__name__)

_ROW_COLUMNS = (
    "package_id",
    "source_name",
    "group_name",
    "version",
    "created_at",
    "waiting_since",
    "queue_key",
    "policy_name",
    "sla_hours",
    "due_soon_at",
    "due_at",
    "outcome",
    "missing_roles",
    "signers",
    "registrants",
    "blocked_by",
    "push_state",
)


@dataclass(frozen=True)
class QueueItem:
    """One row of a pending tab, for the person asking."""

    package_id: int
    source_name: str
    group_name: str
    version: int
    created_at: dt.datetime | None
    queue_key: str
    policy_name: str
    sla_hours: int
    sla: str  # "ok" | "due_soon" | "overdue"
    age_hours: float
    missing_roles: list[str] = field(default_factory=list)
    signable_roles: list[str] = field(default_factory=list)  # roles I hold that I may sign now
    signed_by_me: bool = False
    outcome: str = PENDING_OUTCOME  # what is already decided: Pending | Approved | Rejected
    status: VersionStatus | None = None  # the one display status (review.status), as every page words it

    @property
    def age_label(self) -> str:
        """``5 h`` under two days, ``3.5 d`` after."""
        if self.age_hours < 48:
            return f"{int(self.age_hours)} h"
        return f"{self.age_hours / 24.0:.1f} d"

    @property
    def sla_label(self) -> str:
        return SLA_LABELS.get(self.sla, self.sla)

    @property
    def needs_me(self) -> bool:
        return bool(self.signable_roles)

    @property
    def group_url(self) -> str:
        return page_url("registry:group_detail", self.group_name) + source_query(self.source_name)

    @property
    def review_url(self) -> str:
        path = page_url("registry:package_detail", self.group_name, self.version)
        return f"{path}{source_query(self.source_name)}#review"


# --------------------------------------------------------------------------------------------- pending


def _signing_roles(user: Any) -> set[str]:
    """The roles the user may sign in (a policy may require roles beyond ``SIGNOFF_ROLES``; viewers sign nothing)."""
    if not getattr(user, "is_authenticated", False):
        return set()
    return {role for role in user_roles(user) if role != VIEWER_ROLE}


def _sla(now: dt.datetime, due_soon_at: dt.datetime, due_at: dt.datetime) -> str:
    """As ``policy.sla_state``: overdue strictly past the SLA, due soon from 75 % of it."""
    if now > due_at:
        return "overdue"
    return "due_soon" if now >= due_soon_at else "ok"


def _sla_filter(sla: str, now: dt.datetime, prefix: str = "") -> Q:
    if sla == "overdue":
        return Q(**{f"{prefix}due_at__lt": now})
    if sla == "due_soon":
        return Q(**{f"{prefix}due_soon_at__lte": now, f"{prefix}due_at__gte": now})
    return Q(**{f"{prefix}due_soon_at__gt": now})


def _pending(user: Any, tab: str, filters: QueueFilters, roles: set[str], now: dt.datetime) -> QuerySet[ReviewState]:
    rows = ReviewState.objects.all()
    if tab == "mine":
        rows = rows.filter(
            Exists(ReviewStateRole.objects.filter(state=OuterRef("pk"), role__in=sorted(roles), missing=True))
        ).exclude(signers__contains=signer_token(user.pk))
    if tab == "mine" or filters.not_mine:
        rows = rows.exclude(registrants__contains=registrant_token(user.get_username()))
    if filters.group:
        rows = rows.filter(group_name=filters.group)
    if filters.tag is not None:
        rows = filters.tag.apply(rows, "group_tags")
    if filters.role:
        rows = rows.filter(
            Exists(ReviewStateRole.objects.filter(state=OuterRef("pk"), role=filters.role, missing=True))
        )
    if filters.sla in SLA_STATES:
        rows = rows.filter(_sla_filter(filters.sla, now))
    return rows


def _item(row: dict[str, Any], user: Any, roles: set[str], now: dt.datetime) -> QueueItem:
    signed = registrant = False
    if getattr(user, "is_authenticated", False):
        signed = signer_token(user.pk) in row["signers"]
        registrant = registrant_token(user.get_username()) in row["registrants"]
    missing = list(row["missing_roles"] or [])
    signable = [] if signed or registrant else [role for role in missing if role in roles]
    return QueueItem(
        package_id=row["package_id"],
        source_name=row["source_name"],
        group_name=row["group_name"],
        version=row["version"],
        created_at=row["created_at"],
        queue_key=row["queue_key"],
        policy_name=row["policy_name"],
        sla_hours=row["sla_hours"],
        sla=_sla(now, row["due_soon_at"], row["due_at"]),
        age_hours=max(0.0, (now - row["waiting_since"]).total_seconds() / 3600.0),
        missing_roles=missing,
        signable_roles=signable,
        signed_by_me=signed,
        outcome=row["outcome"],
        status=status_of_row(row),
    )


def _valid_key(after: str) -> str:
    """A cursor is a queue key (digits only); anything else starts at the first page."""
    return after if after.isdigit() and len(after) <= 64 else ""


# --------------------------------------------------------------------------------------------- public


def queue_page(
    user: Any,
    *,
    tab: str = "mine",
    filters: QueueFilters | None = None,
    after: str = "",
    limit: int = PAGE_SIZE,
    count: bool = True,
) -> QueuePage:
    """One page of a queue tab, for ``user``: up to ``limit`` rows after the cursor ``after``.

    * ``mine``: pending, live packages on which the user may sign a role now (see the module
      docstring); oldest first.
    * ``all``: every pending, live package, oldest first (``signable_roles`` still says what the user could sign).
    * ``decided``: the decisions of the last ``DECIDED_DAYS`` days, newest first, with their newest push
      (filtered by group and tag only).

    ``count``: also count the rows of the tab (its filters, all pages). Queries: the user's roles
    (cached), one for the rows, one for the count.
    """
    filters = filters or QueueFilters()
    limit = max(1, min(int(limit), 500))
    if tab == "decided":
        return decided_page(filters, after, limit, count)
    if tab == "revalidation":
        due = revalidation_items(user, filters)
        return QueuePage(due[:limit], len(due) if count else None, "")
    roles = _signing_roles(user)
    if tab != "all" and not roles:
        return QueuePage([], 0 if count else None, "")
    now = timezone.now()
    rows = _pending(user, "all" if tab == "all" else "mine", filters, roles, now)
    total = rows.count() if count else None
    key = _valid_key(after)
    if key:
        rows = rows.filter(queue_key__gt=key)
    found = list(rows.order_by("queue_key").values(*_ROW_COLUMNS)[: limit + 1])
    items = [_item(row, user, roles, now) for row in found[:limit]]
    return QueuePage(items, total, items[-1].queue_key if len(found) > limit else "")


def queue_for_user(
    user: Any, *, tab: str = "mine", group: str = "", tag: str = "", limit: int = PAGE_SIZE
) -> list[Any]:
    """The first page of a tab (``QueueItem`` rows; ``DecidedItem`` for "decided"), unfiltered but
    by group and tag. Shorthand for ``queue_page``."""
    filters = QueueFilters(group=group, tag=TagFilter.parse(tag))
    return queue_page(user, tab=tab, filters=filters, limit=limit, count=False).items


def queue_counts(user: Any) -> dict[str, int]:
    """``{role: packages waiting for me in that role}`` for every sign-off role the user holds (zeros kept).

    Roles are in ``SIGNOFF_ROLES`` order. One ``COUNT ... GROUP BY role`` (plus the user's roles,
    cached per request); anonymous users and people without a sign-off role get ``{}`` without one.
    """
    roles = _signing_roles(user)
    if not roles:
        return {}
    order = list(SIGNOFF_ROLES)
    counts = {role: 0 for role in sorted(roles, key=lambda r: (order.index(r) if r in order else len(order), r))}
    rows = (
        ReviewStateRole.objects.filter(role__in=sorted(roles), missing=True)
        .exclude(state__signers__contains=signer_token(user.pk))
        .exclude(state__registrants__contains=registrant_token(user.get_username()))
        .values("role")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        counts[row["role"]] = row["n"]
    return counts


def queue_cache_clear(user: Any) -> None:
    """Kept for callers: nothing is cached between requests any more (the counts are one indexed query)."""
    if hasattr(user, "_governance_queue"):
        delattr(user, "_governance_queue")


def review_figures(now: dt.datetime) -> tuple[dict[tuple[str, str], int], int, ReviewStateCheck | None]:
    """For /metrics: ``((role, sla) -> packages missing approvals in that role, packages under
    review, the latest finished review-state check)``. Three queries."""
    counts: dict[tuple[str, str], int] = {}
    for row in (
        ReviewStateRole.objects.filter(missing=True)
        .values("role")
        .annotate(**{sla: Count("pk", filter=_sla_filter(sla, now, "state__")) for sla in SLA_STATES})
        .order_by()
    ):
        for sla in SLA_STATES:
            counts[(row["role"], sla)] = row[sla]
    total = ReviewState.objects.count()
    check = ReviewStateCheck.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()
    return counts, total, check


# --------------------------------------------------------------------------------------------- lookups


def push_with_package(push_id: Any) -> PushOutbox | None:
    return PushOutbox.objects.select_related("package__group__source").filter(pk=push_id).first()


def archive_preview(group: ModelPackageGroup) -> list[ModelPackage]:
    """The live versions an archive of ``group`` would reject, newest first (2 queries).

    As ``review.decisions.group_archive`` decides: every live version whose effective status (a
    decision still on its way counts) is not already Rejected.
    """
    packages = (
        ModelPackage.objects.filter(group=group, deleted_at__isnull=True)
        .defer(*LIST_DEFERRED)
        .prefetch_related(
            Prefetch(
                "pushes",
                queryset=PushOutbox.objects.filter(
                    kind=PushOutbox.Kind.DECISION, state__in=PushOutbox.UNDELIVERED_STATES
                ),
                to_attr="undelivered_decisions",
            )
        )
        .order_by("-version")
    )
    return [
        package
        for package in packages
        if effective_status(package, package.undelivered_decisions) != ApprovalStatus.REJECTED  # type: ignore[attr-defined]
    ]
