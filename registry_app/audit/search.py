"""The audit search: CloudTrail calls and audit-log entries by actor, event, resource and time.

Two of the timeline's sources (``cloudtrail`` and ``audit``), filtered so PostgreSQL walks one index
per source, paged by keyset (``paging.Cursor``), newest first. Event and resource match exactly; the
actor matches by prefix, case-insensitively (``LOWER(actor_name) LIKE 'prefix%'``, which the
``text_pattern_ops`` expression indexes of migration 0011 serve on PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower

from registry_app.audit.outside_list import mark_items
from registry_app.audit.paging import MAX_PAGE_SIZE, PAGE_SIZE, Cursor
from registry_app.audit.timeline import SOURCES, Source, keyset, ordered
from registry_app.audit.timeline_items import TimelineItem
from registry_app.audit.values import iso

__all__ = ["SEARCH_KINDS", "AuditSearch", "SearchFilters", "audit_search", "audit_search_stream"]


@dataclass(frozen=True)
class SearchFilters:
    actor: str = ""
    event: str = ""
    resource: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    kinds: tuple[str, ...] = ()  # "cloudtrail" and/or "audit"; empty: both
    before: Cursor | None = None
    limit: int = PAGE_SIZE

    def as_query(self) -> dict[str, str]:
        return {
            key: value
            for key, value in {
                "actor": self.actor,
                "event": self.event,
                "resource": self.resource,
                "since": iso(self.since) or "",
                "until": iso(self.until) or "",
            }.items()
            if value
        }


@dataclass
class AuditSearch:
    filters: SearchFilters
    items: list[TimelineItem]
    older: Cursor | None


SEARCH_KINDS = ("cloudtrail", "audit")


def actor_prefix(qs: QuerySet[Any], prefix: str) -> QuerySet[Any]:
    """Rows whose ``actor_name`` starts with ``prefix``, ignoring case. Written as
    ``LOWER(actor_name) LIKE 'prefix%'`` (``%`` and ``_`` in the prefix escaped) so the expression
    index on ``LOWER(actor_name) text_pattern_ops`` serves it on PostgreSQL."""
    return qs.annotate(actor_lower=Lower("actor_name")).filter(actor_lower__startswith=prefix.lower())


def _search_querysets(filters: SearchFilters) -> list[tuple[Source, QuerySet[Any]]]:
    """The CloudTrail and audit-log querysets of a search, unordered and without the cursor.

    CloudTrail's event and resource filters are exact matches so PostgreSQL can walk ``ct_name_time``,
    ``ct_resource_time`` or ``ct_time_keyset``; the actor prefix walks ``ct_actor_lower_prefix``.
    """
    result = []
    kinds = filters.kinds or SEARCH_KINDS
    if "cloudtrail" in kinds:
        source = SOURCES["cloudtrail"]
        qs = source.queryset()
        if filters.actor:
            qs = actor_prefix(qs, filters.actor)
        if filters.event:
            qs = qs.filter(event_name=filters.event)
        if filters.resource:
            qs = qs.filter(resource_name=filters.resource)
        if filters.since:
            qs = qs.filter(event_time__gte=filters.since)
        if filters.until:
            qs = qs.filter(event_time__lte=filters.until)
        result.append((source, qs))
    if "audit" in kinds:
        source = SOURCES["audit"]
        qs = source.queryset()
        if filters.actor:
            qs = actor_prefix(qs, filters.actor)
        if filters.event:
            qs = qs.filter(action=filters.event)
        if filters.resource:
            qs = qs.filter(
                Q(subject_repr=filters.resource) | Q(subject_id=filters.resource) | Q(package__arn=filters.resource)
            )
        if filters.since:
            qs = qs.filter(created_at__gte=filters.since)
        if filters.until:
            qs = qs.filter(created_at__lte=filters.until)
        result.append((source, qs))
    return result


def _keyset_search(source: Source, qs: QuerySet[Any], cursor: Cursor) -> QuerySet[Any]:
    """Keyset predicate written so the time column bounds an index range scan:
    ``t <= c AND (t < c OR <tie>)``; no OFFSET anywhere."""
    return qs.filter(**{f"{source.time_field}__lte": cursor.at}).filter(keyset(source, cursor, older=True))


def audit_search(filters: SearchFilters) -> AuditSearch:
    """One page of CloudTrail calls and audit-log entries, newest first; two queries, no COUNT."""
    limit = max(1, min(filters.limit, MAX_PAGE_SIZE))
    items: list[TimelineItem] = []
    for source, qs in _search_querysets(filters):
        if filters.before is not None:
            qs = _keyset_search(source, qs, filters.before)
        items.extend(source.to_item(row) for row in ordered(source, qs, descending=True)[: limit + 1])
    items.sort(key=lambda item: item.sort_key, reverse=True)
    more = len(items) > limit
    items = items[:limit]
    mark_items(items)
    return AuditSearch(filters, items, items[-1].cursor if more and items else None)


def audit_search_stream(filters: SearchFilters, *, chunk_size: int = 2000) -> Iterator[TimelineItem]:
    """Every match (from ``filters.before`` when set), newest first, streamed for exports."""
    streams = []
    for source, qs in _search_querysets(filters):
        if filters.before is not None:
            qs = _keyset_search(source, qs, filters.before)
        streams.append(map(source.to_item, ordered(source, qs, descending=True).iterator(chunk_size)))
    return heapq.merge(*streams, key=lambda item: item.sort_key, reverse=True)
