"""Merged timelines of a package, a group or an endpoint (and the lookups the timeline pages start from).

Timelines merge up to twelve *sources* (registry observations, CloudTrail calls, sign-offs and
their going stale, decisions, push creation / delivery / failure, notifications, deployment
starts and ends, and the dashboard's audit log). Each source is one query that returns at most
``limit + 1`` rows beyond the cursor, ordered by its own time column; the rows are merged in
Python. So a page costs one query per source, whatever the number of items, and a cursor is a
position in the merged order: ``(time, source, row id)``, newest first (``paging.Cursor``).

Exports walk the same sources with ``.iterator()`` and ``heapq.merge`` (see ``timeline_stream``),
so they stream in constant memory. The audit search (``search``) reads two of these sources.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import F, Model, Q, QuerySet

from registry_app.audit.outside_list import mark_items
from registry_app.audit.paging import MAX_PAGE_SIZE, PAGE_SIZE, Cursor
from registry_app.audit.timeline_items import (
    KINDS,
    TimelineItem,
    audit_item,
    cloudtrail_item,
    decision_item,
    deployment_item,
    notification_item,
    observation_item,
    push_item,
    signoff_item,
    signoff_stale_item,
)
from registry_app.models import (
    AuditLogEntry,
    CloudTrailEvent,
    Decision,
    EndpointDeployment,
    ModelPackage,
    ModelPackageGroup,
    Notification,
    PackageObservation,
    PushOutbox,
    SignOff,
)
from registry_app.models.audit import endpoint_name_is

__all__ = [
    "SOURCES",
    "Scope",
    "Source",
    "TimelineFilters",
    "TimelinePage",
    "endpoint_scope",
    "group_scope",
    "keyset",
    "ordered",
    "package_scope",
    "timeline_page",
    "timeline_stream",
]


def _username_field() -> str:
    return get_user_model().USERNAME_FIELD


# --------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One query feeding a timeline: a model, its time column and how to turn a row into an item."""

    key: str
    kind: str
    model: type[Model]
    time_field: str
    to_item: Callable[[Any], TimelineItem]
    actor_field: str | None = None  # lookup path for the ?actor= filter; None: not filterable by actor
    id_field: str = "pk"
    base: Callable[[QuerySet[Any]], QuerySet[Any]] = lambda qs: qs
    select: tuple[str, ...] = ()
    package_path: str | None = "package"

    def queryset(self) -> QuerySet[Any]:
        qs = self.base(self.model._default_manager.all())
        if self.select:
            qs = qs.select_related(*self.select)
        if self.package_path:
            qs = qs.annotate(
                _pkg_group=F(f"{self.package_path}__group__name"), _pkg_version=F(f"{self.package_path}__version")
            )
        return qs


def _user_lookup(path: str) -> str:
    return f"{path}__{_username_field()}"


def _sources() -> dict[str, Source]:
    pushes = PushOutbox.State
    sources = [
        Source("audit", "audit", AuditLogEntry, "created_at", audit_item, "actor_name", id_field="seq"),
        Source("cloudtrail", "cloudtrail", CloudTrailEvent, "event_time", cloudtrail_item, "actor_name",
               select=("trail_file",)),  # each call's validation state, in the same query
        Source("decision", "decision", Decision, "created_at", decision_item, _user_lookup("decided_by"),
               select=("decided_by", "policy_version")),
        Source("deployment.end", "deployment", EndpointDeployment, "ended_at",
               lambda r: deployment_item(r, "deployment.end"), base=lambda qs: qs.filter(ended_at__isnull=False)),
        Source("deployment.start", "deployment", EndpointDeployment, "started_at",
               lambda r: deployment_item(r, "deployment.start")),
        Source("notification", "notification", Notification, "created_at", notification_item, select=("recipient",)),
        Source("observation", "observation", PackageObservation, "observed_at", observation_item),
        Source("push.created", "push", PushOutbox, "created_at", lambda r: push_item(r, "push.created"),
               "acting_username"),
        Source("push.outcome", "push", PushOutbox, "updated_at", lambda r: push_item(r, "push.outcome"),
               "acting_username", base=lambda qs: qs.filter(state__in=[pushes.FAILED, pushes.CONFLICT])),
        Source("push.sent", "push", PushOutbox, "sent_at", lambda r: push_item(r, "push.sent"), "acting_username",
               base=lambda qs: qs.filter(state=pushes.SENT, sent_at__isnull=False)),
        Source("signoff", "signoff", SignOff, "created_at", signoff_item, _user_lookup("user"),
               select=("user", "policy_version")),
        Source("signoff.stale", "signoff", SignOff, "stale_at", signoff_stale_item, None,
               base=lambda qs: qs.filter(stale_at__isnull=False), select=("user", "policy_version")),
    ]  # fmt: skip
    return {source.key: source for source in sources}


SOURCES = _sources()


def _ident_value(source: Source, ident: str) -> Any:
    if source.model is PushOutbox:
        return uuid.UUID(ident)
    return int(ident)


def keyset(source: Source, cursor: Cursor, *, older: bool) -> Q:
    """Rows strictly after ``cursor`` in the merged order (older: descending, else ascending)."""
    t = source.time_field
    if older:
        strictly = Q(**{f"{t}__lt": cursor.at})
        if source.key < cursor.source:
            same_time = Q(**{t: cursor.at})
        elif source.key == cursor.source:
            same_time = Q(**{t: cursor.at, f"{source.id_field}__lt": _ident_value(source, cursor.ident)})
        else:
            same_time = Q(pk__in=[])
    else:
        strictly = Q(**{f"{t}__gt": cursor.at})
        if source.key > cursor.source:
            same_time = Q(**{t: cursor.at})
        elif source.key == cursor.source:
            same_time = Q(**{t: cursor.at, f"{source.id_field}__gt": _ident_value(source, cursor.ident)})
        else:
            same_time = Q(pk__in=[])
    return strictly | same_time


def ordered(source: Source, qs: QuerySet[Any], *, descending: bool) -> QuerySet[Any]:
    sign = "-" if descending else ""
    return qs.order_by(f"{sign}{source.time_field}", f"{sign}{source.id_field}")


# --------------------------------------------------------------------------------------------- scopes


@dataclass
class Scope:
    """What a timeline covers: per source key, a filter (sources absent from ``filters`` are skipped)."""

    title: str
    filters: dict[str, Q]
    package: ModelPackage | None = None
    group: ModelPackageGroup | None = None
    endpoint_name: str = ""


def package_scope(package: ModelPackage) -> Scope:
    on_package = Q(package=package)
    return Scope(
        title=f"{package.group.name} v{package.version}",
        filters={key: on_package for key in SOURCES},
        package=package,
        group=package.group,
    )


def group_scope(group: ModelPackageGroup) -> Scope:
    in_group = Q(package__group=group)
    filters = {key: in_group for key in SOURCES}
    filters["cloudtrail"] = Q(package__group=group) | Q(group=group)
    return Scope(title=group.name, filters=filters, group=group)


def _endpoint_names_q(name: str, field_name: str = "endpoint_name") -> Q:
    """The name as written and lower-cased (endpoint ARNs lower-case it), for plain-indexed columns."""
    return Q(**{f"{field_name}__in": sorted({name, name.lower()})})


def endpoint_scope(name: str) -> Scope:
    on_endpoint = endpoint_name_is(name)  # any spelling, through ct_endpoint_time
    deployments = endpoint_name_is(name)  # through deploy_endpoint_start
    return Scope(
        title=name,
        filters={
            "cloudtrail": on_endpoint,
            "deployment.start": deployments,
            "deployment.end": deployments,
            "audit": Q(subject_type="endpoint") & _endpoint_names_q(name, "subject_id"),
        },
        endpoint_name=name,
    )


def _global_scope() -> Scope:
    return Scope(title="all", filters={key: Q() for key in SOURCES})


# --------------------------------------------------------------------------------------------- timelines


@dataclass(frozen=True)
class TimelineFilters:
    kinds: tuple[str, ...] = ()  # empty: every kind
    actor: str = ""
    before: Cursor | None = None  # older than this
    after: Cursor | None = None  # newer than this (takes precedence)
    limit: int = PAGE_SIZE


@dataclass
class TimelinePage:
    scope: Scope
    filters: TimelineFilters
    items: list[TimelineItem]
    older: Cursor | None  # pass as ?before= for the next (older) page; None at the end
    newer: Cursor | None  # pass as ?after= to look for newer items
    has_newer: bool = False
    skipped_for_actor: list[str] = field(default_factory=list)

    @property
    def kind_choices(self) -> list[tuple[str, str, bool]]:
        """(kind, label, selected) for the kinds this scope can show."""
        present = {SOURCES[key].kind for key in self.scope.filters}
        return [(key, label, key in self.filters.kinds) for key, label in KINDS.items() if key in present]


def _selected_sources(scope: Scope, filters: TimelineFilters) -> tuple[list[Source], list[str]]:
    chosen, skipped = [], []
    for key, source in SOURCES.items():
        if key not in scope.filters:
            continue
        if filters.kinds and source.kind not in filters.kinds:
            continue
        if filters.actor and source.actor_field is None:
            skipped.append(source.kind)
            continue
        chosen.append(source)
    return chosen, sorted(set(skipped) - {s.kind for s in chosen})


def _filtered(source: Source, scope: Scope, filters: TimelineFilters) -> QuerySet[Any]:
    qs = source.queryset().filter(scope.filters[source.key])
    if filters.actor and source.actor_field:
        # A prefix, ignoring case, as on /audit/ (one package's or endpoint's rows: no index needed).
        qs = qs.filter(**{f"{source.actor_field}__istartswith": filters.actor})
    return qs


def timeline_page(scope: Scope, filters: TimelineFilters) -> TimelinePage:
    """One page of the merged timeline, newest first. One query per selected source (12 at most)."""
    limit = max(1, min(filters.limit, MAX_PAGE_SIZE))
    sources, skipped = _selected_sources(scope, filters)
    newer_mode = filters.after is not None
    cursor = filters.after if newer_mode else filters.before
    items: list[TimelineItem] = []
    for source in sources:
        qs = _filtered(source, scope, filters)
        if cursor is not None:
            qs = qs.filter(keyset(source, cursor, older=not newer_mode))
        qs = ordered(source, qs, descending=not newer_mode)[: limit + 1]
        items.extend(source.to_item(row) for row in qs)
    items.sort(key=lambda item: item.sort_key, reverse=not newer_mode)
    more = len(items) > limit
    items = items[:limit]
    mark_items(items)
    if newer_mode:
        items.reverse()  # shown newest first
        older = items[-1].cursor if items else filters.after
        newer = items[0].cursor if items else filters.after
        return TimelinePage(scope, filters, items, older, newer, has_newer=more, skipped_for_actor=skipped)
    newer = items[0].cursor if items else filters.before
    return TimelinePage(
        scope,
        filters,
        items,
        older=items[-1].cursor if more and items else None,
        newer=newer,
        has_newer=filters.before is not None,
        skipped_for_actor=skipped,
    )


def timeline_stream(scope: Scope, filters: TimelineFilters, *, chunk_size: int = 1000) -> Iterator[TimelineItem]:
    """Every item of the timeline (filters apply, the cursor does not), newest first, streamed."""
    sources, _ = _selected_sources(scope, filters)
    streams = [
        map(source.to_item, ordered(source, _filtered(source, scope, filters), descending=True).iterator(chunk_size))
        for source in sources
    ]
    return heapq.merge(*streams, key=lambda item: item.sort_key, reverse=True)
