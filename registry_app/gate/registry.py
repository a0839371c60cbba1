"""The mirrored registry as the API lists it: groups and versions, keyset-paginated. Reads only.

Pages are keyset pages (``WHERE (key) > last key ORDER BY key LIMIT n + 1``): a page costs the same
at any depth, and a row inserted meanwhile never shifts the next page. Every function applies the
permission filter through ``mirror.lookups`` (an active account reads everything; anyone else
nothing). Queries are constant in the number of rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, Prefetch, Q, QuerySet

from registry_app.mirror.lookups import find_group, visible_groups
from registry_app.mirror.selectors import HEADLINE_METRICS
from registry_app.models import Metric, ModelPackage, ModelPackageGroup
from registry_app.models.registry import ApprovalStatus

__all__ = ["GroupKey", "Page", "group_page", "headline_of", "package_metrics", "package_page"]

# Columns a version list never needs; some hold up to 100 kB of JSON per version.
_LIST_DEFERRED = ("raw", "inference_specification", "model_metrics", "embedded_card_content", "model_card__content")


@dataclass(frozen=True)
class GroupKey:
    """Where a page of groups resumes: after this (name, id)."""

    name: str
    pk: int


@dataclass
class Page:
    items: list[Any]
    next_key: Any | None  # None: the last page


def _live(status: str | None = None) -> Q:
    q = Q(packages__deleted_at__isnull=True)
    return q & Q(packages__approval_status=status) if status else q


def group_page(user: Any, *, after: GroupKey | None, limit: int, source_name: str | None = None) -> Page:
    """Groups by name (then id), with live version counts per status. One query."""
    groups = visible_groups(user).annotate(
        pending_count=Count("packages", filter=_live(ApprovalStatus.PENDING)),
        approved_count=Count("packages", filter=_live(ApprovalStatus.APPROVED)),
        rejected_count=Count("packages", filter=_live(ApprovalStatus.REJECTED)),
        latest_version=Max("packages__version", filter=_live()),
    )
    if source_name:
        groups = groups.filter(source__name=source_name)
    if after is not None:
        groups = groups.filter(Q(name__gt=after.name) | Q(name=after.name, pk__gt=after.pk))
    rows = list(groups.order_by("name", "pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, GroupKey(rows[-1].name, rows[-1].pk) if more and rows else None)


def _headline_candidates() -> QuerySet[Metric]:
    return (
        Metric.objects.filter(facet="")
        .order_by("pk")
        .only("pk", "package_id", "name", "value", "kind", "facet", "stage")
    )


def headline_of(package: ModelPackage) -> Metric | None:
    """The first of ``HEADLINE_METRICS`` the package has (uses the ``headline_candidates`` prefetch)."""
    by_name: dict[str, Metric] = {}
    for metric in getattr(package, "headline_candidates", []):
        by_name.setdefault(metric.name.casefold(), metric)
    return next((by_name[name] for name in HEADLINE_METRICS if name in by_name), None)


def package_page(
    user: Any,
    *,
    group_name: str,
    source_name: str | None,
    after_version: int | None,
    limit: int,
    status: str | None = None,
    since: dt.datetime | None = None,
) -> tuple[ModelPackageGroup | None, Page]:
    """Versions of a group, newest first (``status``: a ModelApprovalStatus; ``since``: registered
    at or after). Queries: the group, the page, its headline metrics (3)."""
    group = find_group(user, name=group_name, source_name=source_name)
    if group is None:
        return None, Page([], None)
    packages = (
        ModelPackage.objects.filter(group=group)
        .select_related("model_card")
        .defer(*_LIST_DEFERRED)
        .prefetch_related(Prefetch("metrics", queryset=_headline_candidates(), to_attr="headline_candidates"))
    )
    if status:
        packages = packages.filter(approval_status=status)
    if since is not None:
        packages = packages.filter(created_at__gte=since)
    if after_version is not None:
        packages = packages.filter(version__lt=after_version)
    rows = list(packages.order_by("-version")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    for row in rows:
        row.group = group  # the list shares one group object (no query per row)
    return group, Page(rows, rows[-1].version if more and rows else None)


def package_metrics(package: ModelPackage) -> list[Metric]:
    """All normalised metrics of a package (one query)."""
    return list(Metric.objects.filter(package=package).order_by("kind", "stage", "name", "facet", "pk"))
