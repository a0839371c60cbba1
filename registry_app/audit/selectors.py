"""Read-only audit queries: merged timelines, the audit search, the as-of answer, outside decisions.

Timelines merge up to twelve *sources* (registry observations, CloudTrail calls, sign-offs and
their going stale, decisions, push creation / delivery / failure, notifications, deployment
starts and ends, and the dashboard's audit log). Each source is one query that returns at most
``limit + 1`` rows beyond the cursor, ordered by its own time column; the rows are merged in
Python. So a page costs one query per source, whatever the number of items, and a cursor is a
position in the merged order: ``(time, source, row id)``, newest first.

Exports walk the same sources with ``.iterator()`` and ``heapq.merge`` (see ``timeline_stream``),
so they stream in constant memory.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import heapq
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import F, Model, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import In
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from registry_app.audit.outside_decisions import PUSH_EXPLAINS_WITHIN, STATUS_EVENT_NAMES, request_status
from registry_app.models import (
    AuditLogEntry,
    CloudTrailEvent,
    Decision,
    Endpoint,
    EndpointDeployment,
    EndpointVariant,
    ModelCard,
    ModelPackage,
    ModelPackageGroup,
    Notification,
    OutsideDecision,
    PackageObservation,
    PushOutbox,
    SignOff,
)
from registry_app.models.audit import endpoint_name_is
from registry_app.models.registry import ApprovalStatus

__all__ = [
    "KINDS",
    "PAGE_SIZE",
    "AsOfAnswer",
    "AuditSearch",
    "Cursor",
    "Evidence",
    "Fact",
    "Scope",
    "SearchFilters",
    "TimelineFilters",
    "TimelineItem",
    "TimelinePage",
    "as_of",
    "audit_search",
    "audit_search_stream",
    "endpoint_overview",
    "endpoint_scope",
    "group_scope",
    "outside_decisions_page",
    "outside_decisions_stream",
    "package_scope",
    "parse_when",
    "rollback_candidate",
    "timeline_page",
    "timeline_stream",
]

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

# Display kinds (the ?kind= filter) and their labels.
KINDS: dict[str, str] = {
    "observation": "Registry observation",
    "cloudtrail": "CloudTrail call",
    "signoff": "Sign-off",
    "decision": "Decision",
    "push": "Registry push",
    "notification": "Notification",
    "deployment": "Deployment",
    "audit": "Audit log",
}


def _username_field() -> str:
    return get_user_model().USERNAME_FIELD


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def to_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, sort_keys=True, default=_json_default, ensure_ascii=False)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


# --------------------------------------------------------------------------------------------- cursor


@dataclass(frozen=True, order=True)
class Cursor:
    """A position in a merged timeline: ``(at, source, ident)``; ``ident`` sorts like the row ids."""

    at: dt.datetime
    source: str
    ident: str

    def encode(self) -> str:
        text = f"{self.at.astimezone(dt.UTC).isoformat()}|{self.source}|{self.ident}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Raises ValueError for anything that is not a cursor this module made."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise ValueError("malformed cursor") from exc
        parts = text.split("|")
        if len(parts) != 3:
            raise ValueError("malformed cursor")
        at = parse_datetime(parts[0])
        if at is None or timezone.is_naive(at) or not _in_range(at) or not _cursor_ident_ok(parts[1], parts[2]):
            raise ValueError("malformed cursor")
        return cls(at, parts[1], parts[2])


# Moments given as input (dates, cursors) must fall between these: far enough from datetime's own
# limits that converting to UTC or subtracting a period never overflows (a 500), wide enough for
# any audit question.
EARLIEST_INPUT = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST_INPUT = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
_ROW_ID = re.compile(r"[0-9]{1,20}")
_UUID_HEX = re.compile(r"[0-9a-f]{32}")


def _in_range(moment: dt.datetime) -> bool:
    try:
        return EARLIEST_INPUT <= moment.astimezone(dt.UTC) <= LATEST_INPUT
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return False


def _cursor_ident_ok(source: str, ident: str) -> bool:
    """A hand-made cursor must name a source we page and carry an id of that source's type."""
    if source.startswith("push."):
        return source in SOURCES and bool(_UUID_HEX.fullmatch(ident))
    known = source in SOURCES or source == "outside"
    return known and bool(_ROW_ID.fullmatch(ident)) and int(ident) < 2**63  # a 64-bit primary key


def _int_ident(pk: Any) -> str:
    return f"{int(pk):020d}"


def _uuid_ident(pk: Any) -> str:
    return uuid.UUID(str(pk)).hex


# --------------------------------------------------------------------------------------------- items


@dataclass
class TimelineItem:
    at: dt.datetime
    kind: str
    source: str
    ident: str
    actor: str
    title: str
    detail: str
    evidence_id: str
    raw: Any
    package_label: str = ""
    package_group: str = ""
    package_version: int | None = None
    endpoint_name: str = ""
    tone: str = "neutral"  # badge colour class suffix

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.source, self.ident)

    @property
    def sort_key(self) -> tuple[dt.datetime, str, str]:
        return (self.at, self.source, self.ident)

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def raw_json(self) -> str:
        return to_json(self.raw)

    def export_row(self) -> dict[str, Any]:
        return {
            "at": _iso(self.at),
            "kind": self.kind,
            "actor": self.actor,
            "title": self.title,
            "detail": self.detail,
            "package": self.package_label,
            "endpoint": self.endpoint_name,
            "evidence_id": self.evidence_id,
            "raw": self.raw,
        }


def _package_label(row: Any) -> tuple[str, str, int | None]:
    group = getattr(row, "_pkg_group", None)
    version = getattr(row, "_pkg_version", None)
    if group is None or version is None:
        return "", "", None
    return f"{group} v{version}", str(group), int(version)


def _with_package(item: TimelineItem, row: Any) -> TimelineItem:
    item.package_label, item.package_group, item.package_version = _package_label(row)
    return item


def _status_tone(status: str) -> str:
    return {"Approved": "approved", "Rejected": "rejected", "PendingManualApproval": "pending"}.get(status, "neutral")


def _observation_item(row: PackageObservation) -> TimelineItem:
    changes = row.changes if isinstance(row.changes, dict) else {}
    names = ", ".join(sorted(str(k) for k in changes)) or "no field changes"
    status = changes.get("approval_status")
    detail = names
    tone = "running"
    if isinstance(status, list | tuple) and len(status) == 2:
        detail = f"approval status {status[0] or '(new)'} → {status[1]}; " + names
        tone = _status_tone(str(status[1] or ""))
    return _with_package(
        TimelineItem(
            at=row.observed_at,
            kind="observation",
            source="observation",
            ident=_int_ident(row.pk),
            actor="registry sync",
            title=f"Registry {row.get_change_display().lower()}",
            detail=detail,
            evidence_id=f"observation:{row.pk}",
            raw={
                "id": row.pk,
                "change": row.change,
                "changes": changes,
                "observed_at": _iso(row.observed_at),
                "sync_run_id": row.sync_run_id,
            },
            tone=tone,
        ),
        row,
    )


def _cloudtrail_item(row: CloudTrailEvent) -> TimelineItem:
    status = request_status(row.raw)
    detail = row.resource_name or row.endpoint_name or ""
    if status:
        detail = f"modelApprovalStatus={status}; {detail}"
    if row.error_code:
        detail = f"FAILED {row.error_code}; {detail}"
    return _with_package(
        TimelineItem(
            at=row.event_time,
            kind="cloudtrail",
            source="cloudtrail",
            ident=_int_ident(row.pk),
            actor=row.actor_name or row.actor_arn,
            title=row.event_name,
            detail=detail,
            evidence_id=f"cloudtrail:{row.event_id}",
            raw=row.raw,
            endpoint_name=row.endpoint_name,
            tone="rejected" if row.error_code else _status_tone(status),
        ),
        row,
    )


def _username(user: Any) -> str:
    return user.get_username() if user is not None else ""


def _signoff_raw(row: SignOff) -> dict[str, Any]:
    return {
        "id": row.pk,
        "user": _username(row.user),
        "role": row.role,
        "decision": row.decision,
        "comment": row.comment,
        "fingerprint": row.fingerprint,
        "fingerprint_detail": row.fingerprint_detail,
        "created_at": _iso(row.created_at),
        "stale_at": _iso(row.stale_at),
    }


def _signoff_item(row: SignOff) -> TimelineItem:
    return _with_package(
        TimelineItem(
            at=row.created_at,
            kind="signoff",
            source="signoff",
            ident=_int_ident(row.pk),
            actor=_username(row.user),
            title=f"Sign-off: {row.get_decision_display().lower()} as {row.role}",
            detail=(row.comment or "")[:300],
            evidence_id=f"signoff:{row.pk}",
            raw=_signoff_raw(row),
            tone="approved" if row.decision == SignOff.Decision.APPROVE else "rejected",
        ),
        row,
    )


def _signoff_stale_item(row: SignOff) -> TimelineItem:
    assert row.stale_at is not None
    return _with_package(
        TimelineItem(
            at=row.stale_at,
            kind="signoff",
            source="signoff.stale",
            ident=_int_ident(row.pk),
            actor="",
            title=f"Sign-off by {_username(row.user)} ({row.role}) became stale",
            detail="the reviewed content changed after the sign-off",
            evidence_id=f"signoff:{row.pk}",
            raw=_signoff_raw(row),
            tone="pending",
        ),
        row,
    )


def _decision_item(row: Decision) -> TimelineItem:
    return _with_package(
        TimelineItem(
            at=row.created_at,
            kind="decision",
            source="decision",
            ident=_int_ident(row.pk),
            actor=_username(row.decided_by),
            title=f"Decision ({row.get_kind_display()}): {row.status}",
            detail=row.description[:300],
            evidence_id=f"decision:{row.pk}",
            raw={
                "id": row.pk,
                "kind": row.kind,
                "status": row.status,
                "description": row.description,
                "decided_by": _username(row.decided_by),
                "created_at": _iso(row.created_at),
            },
            tone=_status_tone(row.status),
        ),
        row,
    )


def _push_raw(row: PushOutbox) -> dict[str, Any]:
    return {
        "id": str(row.pk),
        "kind": row.kind,
        "state": row.state,
        "decision_id": row.decision_id,
        "signoff_id": row.signoff_id,
        "target_status": row.target_status,
        "target_description": row.target_description,
        "flags": row.flags,
        "expected_status": row.expected_status,
        "acting_username": row.acting_username,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "conflict_detail": row.conflict_detail,
        "created_at": _iso(row.created_at),
        "sent_at": _iso(row.sent_at),
        "updated_at": _iso(row.updated_at),
    }


def _push_what(row: PushOutbox) -> str:
    if row.target_status:
        return f"status {row.target_status}"
    return "flags " + ", ".join(f"{k}={v}" for k, v in sorted((row.flags or {}).items()))


def _push_item(row: PushOutbox, source: str) -> TimelineItem:
    if source == "push.created":
        at, title, tone = row.created_at, "Push queued", "muted"
    elif source == "push.sent":
        assert row.sent_at is not None
        at, title, tone = row.sent_at, "Push sent to SageMaker", "approved"
    else:
        at, title, tone = row.updated_at, f"Push {row.get_state_display().lower()}", "rejected"
    detail = _push_what(row)
    if source == "push.outcome" and row.last_error:
        detail = f"{detail}; {row.last_error[:240]}"
    return _with_package(
        TimelineItem(
            at=at,
            kind="push",
            source=source,
            ident=_uuid_ident(row.pk),
            actor=row.acting_username,
            title=title,
            detail=detail,
            evidence_id=f"push:{row.pk}",
            raw=_push_raw(row),
            tone=tone,
        ),
        row,
    )


def _notification_item(row: Notification) -> TimelineItem:
    return _with_package(
        TimelineItem(
            at=row.created_at,
            kind="notification",
            source="notification",
            ident=_int_ident(row.pk),
            actor="",
            title=f"Email “{row.get_kind_display()}” to {_username(row.recipient)}",
            detail=row.get_state_display() + (f"; {row.last_error[:200]}" if row.last_error else ""),
            evidence_id=f"notification:{row.pk}",
            raw={
                "id": row.pk,
                "kind": row.kind,
                "recipient": _username(row.recipient),
                "key": row.key,
                "state": row.state,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "created_at": _iso(row.created_at),
                "sent_at": _iso(row.sent_at),
            },
            tone="muted",
        ),
        row,
    )


def _deployment_raw(row: EndpointDeployment) -> dict[str, Any]:
    return {
        "id": row.pk,
        "endpoint_name": row.endpoint_name,
        "variant_name": row.variant_name,
        "config_name": row.config_name,
        "model_name": row.model_name,
        "package_arn": row.package_arn,
        "weight": row.weight,
        "started_at": _iso(row.started_at),
        "ended_at": _iso(row.ended_at),
        "evidence": row.evidence,
    }


def _deployment_item(row: EndpointDeployment, source: str) -> TimelineItem:
    started = source == "deployment.start"
    at = row.started_at if started else row.ended_at
    assert at is not None
    weight = f" (weight {row.weight:g})" if row.weight is not None else ""
    return _with_package(
        TimelineItem(
            at=at,
            kind="deployment",
            source=source,
            ident=_int_ident(row.pk),
            actor="",
            title=f"{'Serving on' if started else 'Stopped serving on'} {row.endpoint_name}/{row.variant_name}",
            detail=f"{row.package_arn or row.model_name}{weight}; config {row.config_name or '?'}",
            evidence_id=f"deployment:{row.pk}",
            raw=_deployment_raw(row),
            endpoint_name=row.endpoint_name,
            tone="running" if started else "muted",
        ),
        row,
    )


def _audit_raw(row: AuditLogEntry) -> dict[str, Any]:
    from registry_app.audit.log import canonical_content

    return {**canonical_content(row), "id": row.pk, "prev_hash": row.prev_hash, "hash": row.hash}


def _audit_item(row: AuditLogEntry) -> TimelineItem:
    return _with_package(
        TimelineItem(
            at=row.created_at,
            kind="audit",
            source="audit",
            ident=_int_ident(row.seq),
            actor=row.actor_name,
            title=row.action,
            detail=(row.message or row.subject_repr)[:300],
            evidence_id=f"audit:#{row.seq}",
            raw=_audit_raw(row),
            endpoint_name=row.subject_id if row.subject_type == "endpoint" else "",
            tone="info",
        ),
        row,
    )


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
        Source("audit", "audit", AuditLogEntry, "created_at", _audit_item, "actor_name", id_field="seq"),
        Source("cloudtrail", "cloudtrail", CloudTrailEvent, "event_time", _cloudtrail_item, "actor_name"),
        Source("decision", "decision", Decision, "created_at", _decision_item, _user_lookup("decided_by"),
               select=("decided_by",)),
        Source("deployment.end", "deployment", EndpointDeployment, "ended_at",
               lambda r: _deployment_item(r, "deployment.end"), base=lambda qs: qs.filter(ended_at__isnull=False)),
        Source("deployment.start", "deployment", EndpointDeployment, "started_at",
               lambda r: _deployment_item(r, "deployment.start")),
        Source("notification", "notification", Notification, "created_at", _notification_item, select=("recipient",)),
        Source("observation", "observation", PackageObservation, "observed_at", _observation_item),
        Source("push.created", "push", PushOutbox, "created_at", lambda r: _push_item(r, "push.created"),
               "acting_username"),
        Source("push.outcome", "push", PushOutbox, "updated_at", lambda r: _push_item(r, "push.outcome"),
               "acting_username", base=lambda qs: qs.filter(state__in=[pushes.FAILED, pushes.CONFLICT])),
        Source("push.sent", "push", PushOutbox, "sent_at", lambda r: _push_item(r, "push.sent"), "acting_username",
               base=lambda qs: qs.filter(state=pushes.SENT, sent_at__isnull=False)),
        Source("signoff", "signoff", SignOff, "created_at", _signoff_item, _user_lookup("user"), select=("user",)),
        Source("signoff.stale", "signoff", SignOff, "stale_at", _signoff_stale_item, None,
               base=lambda qs: qs.filter(stale_at__isnull=False), select=("user",)),
    ]  # fmt: skip
    return {source.key: source for source in sources}


SOURCES = _sources()


def _ident_value(source: Source, ident: str) -> Any:
    if source.model is PushOutbox:
        return uuid.UUID(ident)
    return int(ident)


def _keyset(source: Source, cursor: Cursor, *, older: bool) -> Q:
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


def _ordered(source: Source, qs: QuerySet[Any], *, descending: bool) -> QuerySet[Any]:
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
        qs = qs.filter(**{f"{source.actor_field}__iexact": filters.actor})
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
            qs = qs.filter(_keyset(source, cursor, older=not newer_mode))
        qs = _ordered(source, qs, descending=not newer_mode)[: limit + 1]
        items.extend(source.to_item(row) for row in qs)
    items.sort(key=lambda item: item.sort_key, reverse=not newer_mode)
    more = len(items) > limit
    items = items[:limit]
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
        map(source.to_item, _ordered(source, _filtered(source, scope, filters), descending=True).iterator(chunk_size))
        for source in sources
    ]
    return heapq.merge(*streams, key=lambda item: item.sort_key, reverse=True)


# --------------------------------------------------------------------------------------------- audit search


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_when(text: str, *, end: bool = False) -> dt.datetime | None:
    """An ISO-8601 date or datetime (naive means UTC). A bare date as an end bound means the end of that day.

    Raises ValueError for text that is neither, and for a moment outside EARLIEST_INPUT .. LATEST_INPUT.
    """
    text = (text or "").strip()
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        # parse_datetime accepts a bare date as midnight; a bare date is handled below (end of day).
        moment = None if _DATE_ONLY.fullmatch(text) else parse_datetime(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO-8601 date or time") from exc
    if moment is None:
        try:
            day = parse_date(text)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an ISO-8601 date or time") from exc
        if day is None:
            raise ValueError(f"{text!r} is not an ISO-8601 date or time")
        moment = dt.datetime.combine(day, dt.time.min)
        if end:
            moment += dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    if not _in_range(moment):
        raise ValueError(f"{text!r} is outside {EARLIEST_INPUT:%Y-%m-%d} .. {LATEST_INPUT:%Y-%m-%d}")
    return moment


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
                "since": _iso(self.since) or "",
                "until": _iso(self.until) or "",
            }.items()
            if value
        }


@dataclass
class AuditSearch:
    filters: SearchFilters
    items: list[TimelineItem]
    older: Cursor | None


SEARCH_KINDS = ("cloudtrail", "audit")


def _search_querysets(filters: SearchFilters) -> list[tuple[Source, QuerySet[Any]]]:
    """The CloudTrail and audit-log querysets of a search, unordered and without the cursor.

    CloudTrail filters are exact matches so PostgreSQL can walk ``ct_actor_time``,
    ``ct_name_time``, ``ct_resource_time`` or ``ct_time_keyset``.
    """
    result = []
    kinds = filters.kinds or SEARCH_KINDS
    if "cloudtrail" in kinds:
        source = SOURCES["cloudtrail"]
        qs = source.queryset()
        if filters.actor:
            qs = qs.filter(actor_name=filters.actor)
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
            qs = qs.filter(actor_name=filters.actor)
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
    return qs.filter(**{f"{source.time_field}__lte": cursor.at}).filter(_keyset(source, cursor, older=True))


def audit_search(filters: SearchFilters) -> AuditSearch:
    """One page of CloudTrail calls and audit-log entries, newest first; two queries, no COUNT."""
    limit = max(1, min(filters.limit, MAX_PAGE_SIZE))
    items: list[TimelineItem] = []
    for source, qs in _search_querysets(filters):
        if filters.before is not None:
            qs = _keyset_search(source, qs, filters.before)
        items.extend(source.to_item(row) for row in _ordered(source, qs, descending=True)[: limit + 1])
    items.sort(key=lambda item: item.sort_key, reverse=True)
    more = len(items) > limit
    items = items[:limit]
    return AuditSearch(filters, items, items[-1].cursor if more and items else None)


def audit_search_stream(filters: SearchFilters, *, chunk_size: int = 2000) -> Iterator[TimelineItem]:
    """Every match (from ``filters.before`` when set), newest first, streamed for exports."""
    streams = []
    for source, qs in _search_querysets(filters):
        if filters.before is not None:
            qs = _keyset_search(source, qs, filters.before)
        streams.append(map(source.to_item, _ordered(source, qs, descending=True).iterator(chunk_size)))
    return heapq.merge(*streams, key=lambda item: item.sort_key, reverse=True)


# --------------------------------------------------------------------------------------------- outside decisions


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
        older = Cursor(rows[-1].observed_at, "outside", _int_ident(rows[-1].pk))
    return OutsideDecisionPage(rows, older, to_status)


def outside_decision_row(row: OutsideDecision) -> dict[str, Any]:
    return {
        "package_arn": row.package.arn,
        "group": row.package.group.name,
        "version": row.package.version,
        "from_status": row.from_status,
        "to_status": row.to_status,
        "observed_at": _iso(row.observed_at),
        "changed_at": _iso(row.changed_at),
        "actor_name": row.actor_name,
        "actor_arn": row.actor_arn,
        "cloudtrail_event_id": row.event.event_id if row.event else "",
        "notified_at": _iso(row.notified_at),
        "evidence_id": f"outside_decision:{row.pk}",
    }


def outside_decisions_stream(*, to_status: str = "") -> Iterator[OutsideDecision]:
    return _outside_decisions(to_status).order_by("-observed_at", "-pk").iterator(chunk_size=500)


# --------------------------------------------------------------------------------------------- as of


@dataclass(frozen=True)
class Evidence:
    ref: str  # "cloudtrail:<eventID>", "observation:<id>", "signoff:<id>", "deployment:<id>", ...
    at: dt.datetime | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "at": _iso(self.at), "note": self.note}


@dataclass
class Fact:
    name: str
    value: str
    evidence: list[Evidence] = field(default_factory=list)
    missing: str = ""  # what is not known, instead of a guess

    def as_dict(self) -> dict[str, Any]:
        return {
            "fact": self.name,
            "value": self.value,
            "evidence": [e.as_dict() for e in self.evidence],
            "missing": self.missing,
        }


@dataclass
class Transition:
    at: dt.datetime
    status: str
    before: str | None
    evidence: list[Evidence]
    actors: list[str] = field(default_factory=list)  # CloudTrail principals who made the change


@dataclass
class SignOffAt:
    signoff: SignOff
    stale: bool

    def as_dict(self) -> dict[str, Any]:
        return {**_signoff_raw(self.signoff), "stale_at_time": self.stale, "evidence": f"signoff:{self.signoff.pk}"}


@dataclass
class RollbackCandidate:
    package: ModelPackage | None
    status_fact: Fact | None
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "package_arn": self.package.arn if self.package else None,
            "version": self.package.version if self.package else None,
            "status": self.status_fact.as_dict() if self.status_fact else None,
            "note": self.note,
        }


@dataclass
class PackageAt:
    package: ModelPackage | None
    package_arn: str
    facts: list[Fact]
    signoffs: list[SignOffAt]
    decisions: list[Decision]
    outside: list[OutsideDecision]

    @property
    def approvers(self) -> list[SignOffAt]:
        return [s for s in self.signoffs if not s.stale and s.signoff.decision == SignOff.Decision.APPROVE]

    def as_dict(self) -> dict[str, Any]:
        return {
            "package_arn": self.package_arn,
            "group": self.package.group.name if self.package else None,
            "version": self.package.version if self.package else None,
            "facts": [f.as_dict() for f in self.facts],
            "signoffs": [s.as_dict() for s in self.signoffs],
            "decisions": [
                {
                    "id": d.pk,
                    "kind": d.kind,
                    "status": d.status,
                    "decided_by": _username(d.decided_by),
                    "created_at": _iso(d.created_at),
                    "description": d.description,
                    "evidence": f"decision:{d.pk}",
                }
                for d in self.decisions
            ],
            "outside_decisions": [outside_decision_row(o) for o in self.outside],
        }


@dataclass
class VariantAt:
    deployment: EndpointDeployment
    package: PackageAt
    rollback: RollbackCandidate | None

    @property
    def evidence(self) -> list[Evidence]:
        return _deployment_evidence(self.deployment)

    def as_dict(self) -> dict[str, Any]:
        d = self.deployment
        return {
            "variant_name": d.variant_name,
            "weight": d.weight,
            "config_name": d.config_name,
            "model_name": d.model_name,
            "window": {"started_at": _iso(d.started_at), "ended_at": _iso(d.ended_at)},
            "deployment_evidence": [e.as_dict() for e in self.evidence],
            "deployment_missing": _deployment_missing(d),
            "package": self.package.as_dict(),
            "rollback_candidate": self.rollback.as_dict() if self.rollback else None,
        }


@dataclass
class AsOfAnswer:
    endpoint_name: str
    at: dt.datetime
    endpoint: Endpoint | None
    variants: list[VariantAt]
    nothing_deployed: bool
    summary: str
    summary_evidence: list[Evidence]
    missing: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint_name,
            "at": _iso(self.at),
            "nothing_deployed": self.nothing_deployed,
            "summary": self.summary,
            "summary_evidence": [e.as_dict() for e in self.summary_evidence],
            "missing": self.missing,
            "variants": [v.as_dict() for v in self.variants],
        }

    def fact_rows(self) -> Iterator[dict[str, Any]]:
        """Flat rows (one per fact) for CSV and print exports."""
        base = {"endpoint": self.endpoint_name, "at": _iso(self.at)}
        yield {
            **base,
            "variant": "",
            "package_arn": "",
            "fact": "answer",
            "value": self.summary,
            "evidence_ids": " ".join(e.ref for e in self.summary_evidence),
            "missing": "; ".join(self.missing),
        }
        for variant in self.variants:
            row = {**base, "variant": variant.deployment.variant_name, "package_arn": variant.package.package_arn}
            yield {
                **row,
                "fact": "deployment window",
                "value": f"{_iso(variant.deployment.started_at)} – {_iso(variant.deployment.ended_at) or 'now'}"
                f" weight {variant.deployment.weight}",
                "evidence_ids": " ".join(e.ref for e in variant.evidence),
                "missing": "",
            }
            for fact in variant.package.facts:
                yield {
                    **row,
                    "fact": fact.name,
                    "value": fact.value,
                    "evidence_ids": " ".join(e.ref for e in fact.evidence),
                    "missing": fact.missing,
                }
            for item in variant.package.signoffs:
                s = item.signoff
                yield {
                    **row,
                    "fact": "sign-off",
                    "value": f"{_username(s.user)} as {s.role}: {s.decision}{' (stale)' if item.stale else ''}"
                    f" at {_iso(s.created_at)}; fingerprint {s.fingerprint}",
                    "evidence_ids": f"signoff:{s.pk}",
                    "missing": "",
                }
            for decision in variant.package.decisions:
                yield {
                    **row,
                    "fact": "decision",
                    "value": f"{decision.get_kind_display()}: {decision.status} by "
                    f"{_username(decision.decided_by) or 'policy'} at {_iso(decision.created_at)}",
                    "evidence_ids": f"decision:{decision.pk}",
                    "missing": "",
                }
            if variant.rollback is not None:
                rb = variant.rollback
                yield {
                    **row,
                    "fact": "rollback candidate",
                    "value": f"{rb.package.arn} (v{rb.package.version})" if rb.package else "none",
                    "evidence_ids": " ".join(e.ref for e in rb.status_fact.evidence) if rb.status_fact else "",
                    "missing": rb.note if rb.package is None else "",
                }


def _deployment_evidence(deployment: EndpointDeployment) -> list[Evidence]:
    """Evidence refs of a deployment window. The rebuild (``services.deployments``) writes
    ``{"events": {step: eventID}, "ended_by": eventID, "mirror": {...}, "missing": [...]}``; other
    keys are shown as they are."""
    refs = [Evidence(f"deployment:{deployment.pk}", deployment.started_at, "deployment window")]
    evidence = deployment.evidence if isinstance(deployment.evidence, dict) else {}
    for key, value in sorted(evidence.items()):
        if key in ("missing", "mirror_disagrees"):
            continue  # not evidence: see _deployment_missing
        if key == "events" and isinstance(value, dict):
            for step, event_id in sorted(value.items()):
                if event_id:
                    refs.append(Evidence(f"cloudtrail:{event_id}", None, f"{step} call"))
        elif key in ("ended_by",) and isinstance(value, str) and value:
            refs.append(Evidence(f"cloudtrail:{value}", deployment.ended_at, "ended by this call"))
        elif isinstance(value, dict):
            note = ", ".join(f"{k}={v}" for k, v in sorted(value.items()) if v not in (None, ""))
            refs.append(Evidence(f"{key}:{deployment.endpoint_name}", None, note))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and (item.get("event_id") or item.get("eventID")):
                    ident = item.get("event_id") or item.get("eventID")
                    refs.append(Evidence(f"cloudtrail:{ident}", _parse_any(item.get("event_time")), key))
                elif isinstance(item, str) and item:
                    prefix = "cloudtrail" if "event" in key.lower() else key
                    refs.append(Evidence(f"{prefix}:{item}", None, key))
        elif value not in (None, ""):
            prefix = "cloudtrail" if "event" in key.lower() else key
            refs.append(Evidence(f"{prefix}:{value}", None, key))
    return refs


def _deployment_missing(deployment: EndpointDeployment) -> list[str]:
    """What the rebuild could not prove about a window (its ``missing`` links, mirror disagreements)."""
    evidence = deployment.evidence if isinstance(deployment.evidence, dict) else {}
    missing = [str(line) for line in evidence.get("missing") or [] if line]
    disagrees = evidence.get("mirror_disagrees")
    if isinstance(disagrees, dict) and disagrees:
        missing.append(
            "The registry mirror disagrees with CloudTrail about this window "
            f"({', '.join(f'{k}={v}' for k, v in sorted(disagrees.items()))}); the update may have failed."
        )
    if not deployment.package_arn:
        missing.append("No model package is known for this variant (its CreateModel call is not in CloudTrail).")
    return missing


def _parse_any(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_when(value)
        except ValueError:
            return None
    return None


def _pick_endpoint(name: str) -> Endpoint | None:
    return (
        Endpoint.objects.filter(name__iexact=name)
        .select_related("source")
        .order_by(F("deleted_at").desc(nulls_first=True))
        .first()
    )


def _observations_with(package_ids: list[int], field_name: str) -> dict[int, list[PackageObservation]]:
    rows = (
        PackageObservation.objects.filter(package_id__in=package_ids, changes__has_key=field_name)
        .only("pk", "package_id", "observed_at", "change", "changes")
        .order_by("observed_at", "pk")
    )
    found: dict[int, list[PackageObservation]] = {}
    for row in rows:
        found.setdefault(row.package_id, []).append(row)
    return found


def _named(names: Iterable[str]) -> Q:
    """``event_name IN names`` as a filter on the rows another index found, never as the index to
    walk: a few event names cover most of the table, and a planner without (or with sampled)
    statistics would otherwise walk ``ct_name_time`` through every call of that name. ``COALESCE``
    of a NOT NULL column changes no result; no index is on it."""
    return Q(In(Coalesce(F("event_name"), Value("")), list(names)))


def status_events_queryset(packages: list[ModelPackage]) -> QuerySet[CloudTrailEvent]:
    """The approval-status calls of ``packages`` (linked, or named by ARN), oldest first: found
    through ``ct_package_time`` + ``ct_resource_time`` (an OR of two index lookups)."""
    arns = [p.arn for p in packages]
    return (
        CloudTrailEvent.objects.filter(Q(package__in=packages) | Q(resource_name__in=arns))
        .filter(_named(STATUS_EVENT_NAMES), error_code="")
        .order_by("event_time", "pk")
    )


def _status_events(packages: list[ModelPackage]) -> dict[int, list[CloudTrailEvent]]:
    by_arn = {p.arn: p.pk for p in packages}
    rows = status_events_queryset(packages)
    found: dict[int, list[CloudTrailEvent]] = {}
    for row in rows:
        pk = row.package_id or by_arn.get(row.resource_name)
        if pk is not None and request_status(row.raw):
            found.setdefault(pk, []).append(row)
    return found


def _transitions(observations: list[PackageObservation], events: list[CloudTrailEvent]) -> list[Transition]:
    """Approval-status changes from both sources, in time order, merging a CloudTrail call and the
    observation of its result into one transition (the call's time, both pieces of evidence)."""
    points: list[tuple[dt.datetime, int, str, str | None, Evidence, str]] = []
    for event in events:
        status = request_status(event.raw)
        who = event.actor_name or event.actor_arn or "unknown principal"
        points.append(
            (
                event.event_time,
                0,
                status,
                None,
                Evidence(f"cloudtrail:{event.event_id}", event.event_time, f"{event.event_name} by {who}"),
                who,
            )
        )
    for obs in observations:
        pair = (obs.changes or {}).get("approval_status")
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not pair[1]:
            continue
        note = (
            "first seen by the registry mirror"
            if obs.change == PackageObservation.Change.CREATED
            else "observed by the registry mirror"
        )
        points.append(
            (obs.observed_at, 1, str(pair[1]), pair[0], Evidence(f"observation:{obs.pk}", obs.observed_at, note), "")
        )
    points.sort(key=lambda p: (p[0], p[1]))
    transitions: list[Transition] = []
    for at, _, status, before, evidence, who in points:
        if transitions and transitions[-1].status == status:
            transitions[-1].evidence.append(evidence)  # the same state seen again (call, then its observation)
            if who and who not in transitions[-1].actors:
                transitions[-1].actors.append(who)
            if transitions[-1].before is None and before is not None:
                transitions[-1].before = before
            continue
        transitions.append(
            Transition(
                at,
                status,
                before if before is not None else (transitions[-1].status if transitions else None),
                [evidence],
                [who] if who else [],
            )
        )
    return transitions


def _status_fact(
    package: ModelPackage, transitions: list[Transition], at: dt.datetime
) -> tuple[Fact, Transition | None]:
    """The approval status at ``at`` and the transition that set it (None when inferred or unknown)."""
    before_t = [t for t in transitions if t.at <= at]
    if before_t:
        current = before_t[-1]
        return Fact("approval status", current.status, list(current.evidence)), current
    after_t = [t for t in transitions if t.at > at]
    if after_t and after_t[0].before:
        first = after_t[0]
        return (
            Fact(
                "approval status",
                str(first.before),
                list(first.evidence),
                missing="" if first.before else "no status before the first recorded change",
            ),
            None,
        )
    if package.created_at and package.created_at > at:
        return Fact(
            "approval status",
            "(package not yet registered)",
            [Evidence(f"package:{package.arn}", package.created_at, "CreationTime")],
        ), None
    if not transitions and package.first_seen_at <= at:
        return (
            Fact(
                "approval status",
                package.approval_status or "(unknown)",
                [
                    Evidence(
                        f"package:{package.arn}",
                        package.last_synced_at,
                        "current mirror record; no status change recorded",
                    )
                ],
            ),
            None,
        )
    seen = f"the registry mirror first saw this package at {_iso(package.first_seen_at)}"
    return (
        Fact(
            "approval status",
            "unknown",
            [],
            missing=f"No status evidence at this time: {seen} and no CloudTrail UpdateModelPackage call "
            "before then has been ingested.",
        ),
        None,
    )


def _value_at(
    package: ModelPackage, field_name: str, observations: list[PackageObservation], at: dt.datetime
) -> tuple[Any, list[Evidence], str]:
    """(value of the mirror field at ``at``, evidence, what is missing). The value is the ``before`` of
    the first recorded change after ``at``; with no later change, the current value."""
    later = [o for o in observations if o.observed_at > at]
    if later:
        first = later[0]
        pair = (first.changes or {}).get(field_name)
        value = pair[0] if isinstance(pair, list | tuple) and len(pair) == 2 else None
        return value, [Evidence(f"observation:{first.pk}", first.observed_at, f"{field_name} before this change")], ""
    value = getattr(package, field_name)
    note = f"current mirror record; no change of {field_name} observed since"
    if package.first_seen_at > at:
        note = f"earliest mirror record (first seen {_iso(package.first_seen_at)}); see the coverage fact"
    return value, [Evidence(f"package:{package.arn}", package.last_synced_at, note)], ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else json.dumps(value, sort_keys=True))


def _reproducibility_facts(
    package: ModelPackage, observations: dict[str, list[PackageObservation]], at: dt.datetime
) -> list[Fact]:
    customer, c_ev, c_missing = _value_at(package, "customer_metadata", observations.get("customer_metadata", []), at)
    customer = customer if isinstance(customer, dict) else {}
    meta, m_ev, m_missing = _value_at(package, "metadata_properties", observations.get("metadata_properties", []), at)
    meta = meta if isinstance(meta, dict) else {}
    spec, s_ev, s_missing = _value_at(
        package, "inference_specification", observations.get("inference_specification", []), at
    )
    spec = spec if isinstance(spec, dict) else {}

    facts = []
    data_version = _text(customer.get("TrainingDataS3VersionId"))
    facts.append(
        Fact(
            "training data version",
            data_version or "(not recorded)",
            c_ev,
            c_missing
            or ("" if data_version else "TrainingDataS3VersionId is not in the package's CustomerMetadataProperties."),
        )
    )
    commit, commit_evidence, commit_missing = _text(customer.get("GitCommitSha")), c_ev, c_missing
    source_note = "CustomerMetadataProperties.GitCommitSha"
    if not commit:
        commit, commit_evidence, commit_missing = _text(meta.get("CommitId")), m_ev, m_missing
        source_note = "MetadataProperties.CommitId"
    facts.append(
        Fact(
            "commit",
            f"{commit} ({source_note})" if commit else "(not recorded)",
            commit_evidence,
            commit_missing or ("" if commit else "Neither GitCommitSha nor MetadataProperties.CommitId is recorded."),
        )
    )
    containers = [c for c in spec.get("Containers") or [] if isinstance(c, dict)]
    digests = [_text(c.get("ImageDigest")) for c in containers if c.get("ImageDigest")]
    evidence, missing = s_ev, s_missing
    if not digests and customer.get("ContainerImageDigest"):
        digests, evidence, missing = [_text(customer["ContainerImageDigest"])], c_ev, c_missing
    images_without = [str(c.get("Image") or "?") for c in containers if not c.get("ImageDigest")]
    if images_without and digests:
        missing = (missing + " " if missing else "") + f"No digest recorded for: {', '.join(images_without)}."
    facts.append(
        Fact(
            "image digest",
            ", ".join(digests) or "(not recorded)",
            evidence,
            missing
            or ("" if digests else "No ImageDigest in the inference specification and no ContainerImageDigest."),
        )
    )
    return facts


def _card_fact(package: ModelPackage, observations: dict[str, list[PackageObservation]], at: dt.datetime) -> Fact:
    card: ModelCard | None = package.model_card
    if card is not None:
        events = [
            e
            for e in CloudTrailEvent.objects.filter(
                Q(resource_name=card.name) | Q(resource_name=card.arn),
                _named(("CreateModelCard", "UpdateModelCard")),
                error_code="",
                event_time__lte=at,
            ).order_by("-event_time", "-pk")[:50]
            if _card_status(e.raw)
        ]
        if events:
            event = events[0]
            return Fact(
                "model card status",
                f"{_card_status(event.raw)} (standalone card {card.name})",
                [Evidence(f"cloudtrail:{event.event_id}", event.event_time, event.event_name)],
            )
        if card.last_modified_at is not None and card.last_modified_at <= at:
            return Fact(
                "model card status",
                f"{card.status} (standalone card {card.name} v{card.version})",
                [Evidence(f"card:{card.arn}", card.last_modified_at, "not modified since")],
            )
        return Fact(
            "model card status",
            "unknown",
            [Evidence(f"card:{card.arn}", card.last_modified_at, f"now v{card.version} {card.status}")],
            missing=f"The standalone card {card.name} changed after this time (last modified "
            f"{_iso(card.last_modified_at) or 'at an unknown time'}) and no CloudTrail record of its status "
            "before then has been ingested.",
        )
    value, evidence, missing = _value_at(
        package, "embedded_card_status", observations.get("embedded_card_status", []), at
    )
    if not value:
        return Fact("model card status", "(no model card)", evidence, missing)
    return Fact("model card status", f"{value} (card embedded in the package)", evidence, missing)


def _card_status(raw: Any) -> str:
    params = raw.get("requestParameters") if isinstance(raw, dict) else None
    if not isinstance(params, dict):
        return ""
    return str(params.get("modelCardStatus") or params.get("ModelCardStatus") or "")


def _approval_fact(
    transitions: list[Transition],
    at: dt.datetime,
    decisions: list[Decision],
    pushes: list[PushOutbox],
    outside: list[OutsideDecision],
) -> Fact:
    approved = [t for t in transitions if t.at <= at and t.status == ApprovalStatus.APPROVED]
    if not approved:
        return Fact("approval", "not approved at this time", [])
    last = approved[-1]
    evidence = list(last.evidence)
    missing = ""
    if last.actors:
        how = f"by {', '.join(last.actors)} (UpdateModelPackage; no dashboard push explains it)"
    else:
        how = "(seen by the registry mirror)"
        missing = "Who approved it is not in the ingested CloudTrail."
    window_start = last.at - PUSH_EXPLAINS_WITHIN
    sent = [
        p
        for p in pushes
        if p.target_status == ApprovalStatus.APPROVED and p.sent_at and window_start <= p.sent_at <= at
    ]
    flagged = [o for o in outside if o.to_status == ApprovalStatus.APPROVED and window_start <= o.observed_at <= at]
    if sent:
        push = sent[-1]
        evidence.append(Evidence(f"push:{push.pk}", push.sent_at, "dashboard push"))
        if push.decision_id:
            evidence.append(Evidence(f"decision:{push.decision_id}", None, "dashboard decision"))
        how = "through the governance dashboard" + (
            f" on behalf of {push.acting_username}" if push.acting_username else ""
        )
        missing = ""
    if flagged:
        row = flagged[-1]
        evidence.append(Evidence(f"outside_decision:{row.pk}", row.observed_at, "flagged: set outside the dashboard"))
        how = f"outside the dashboard{f' by {row.actor_name}' if row.actor_name else ''}"
    return Fact("approval", f"Approved at {_iso(last.at)} {how}", evidence, missing)


# UpdateModelPackage request members that change what the reproducibility and card facts read.
_CONTENT_PARAMS = (
    "customermetadataproperties",
    "customermetadatapropertiestoremove",
    "inferencespecification",
    "additionalinferencespecificationstoadd",
    "modelcard",
    "sourceuri",
)


def _coverage_fact(package: ModelPackage, at: dt.datetime) -> Fact | None:
    """When the mirror first saw the package after ``at``: is there evidence its content stayed the same
    from ``at`` until then? CloudTrail says so only if it reaches back to ``at``. None when not needed."""
    first_seen = package.first_seen_at
    if first_seen <= at:
        return None
    changes = [
        event
        for event in CloudTrailEvent.objects.filter(
            Q(package=package) | Q(resource_name=package.arn),
            _named(("UpdateModelPackage",)),
            error_code="",
            event_time__gt=at,
            event_time__lt=first_seen,
        ).order_by("event_time", "pk")[:50]
        if {str(k).lower() for k in ((event.raw or {}).get("requestParameters") or {})} & set(_CONTENT_PARAMS)
    ]
    name = "content before the mirror's first sighting"
    if changes:
        return Fact(
            name,
            f"changed after this time, before the mirror first saw it ({_iso(first_seen)})",
            [
                Evidence(f"cloudtrail:{e.event_id}", e.event_time, "UpdateModelPackage changing content")
                for e in changes
            ],
            missing="Training data version, commit, image digest and card may have differed at this time: "
            "the mirror only knows the content after these calls.",
        )
    reaches_back = CloudTrailEvent.objects.filter(event_time__lte=at).exists()
    if reaches_back:
        return Fact(
            name,
            f"unchanged from this time until the mirror first saw it ({_iso(first_seen)})",
            [Evidence("cloudtrail:coverage", at, "no UpdateModelPackage call changed its content in between")],
        )
    return Fact(
        name,
        "unknown",
        [],
        missing=f"The registry mirror first saw this package at {_iso(first_seen)} and the ingested CloudTrail does "
        "not reach back to this time; training data version, commit, image digest and card are the earliest recorded.",
    )


def _package_at(package: ModelPackage | None, arn: str, at: dt.datetime) -> PackageAt:
    if package is None:
        return PackageAt(
            None,
            arn,
            [Fact("package", arn or "(unknown)", [], missing="This package version is not in the registry mirror.")],
            [],
            [],
            [],
        )
    tracked = ("customer_metadata", "metadata_properties", "inference_specification", "embedded_card_status")
    observations = {name: _observations_with([package.pk], name).get(package.pk, []) for name in tracked}
    transitions = _transitions(
        _observations_with([package.pk], "approval_status").get(package.pk, []),
        _status_events([package]).get(package.pk, []),
    )
    status, _ = _status_fact(package, transitions, at)
    signoffs = [
        SignOffAt(s, s.stale_at is not None and s.stale_at <= at)
        for s in SignOff.objects.filter(package=package, created_at__lte=at)
        .select_related("user")
        .order_by("created_at", "pk")
    ]
    decisions = list(
        Decision.objects.filter(package=package, created_at__lte=at)
        .select_related("decided_by")
        .order_by("created_at", "pk")
    )
    pushes = list(PushOutbox.objects.filter(package=package, created_at__lte=at).order_by("created_at"))
    outside = list(
        OutsideDecision.objects.filter(package=package, observed_at__lte=at)
        .select_related("event")
        .order_by("observed_at")
    )
    facts = [
        Fact(
            "package",
            f"{package.group.name} v{package.version}",
            [Evidence(f"package:{package.arn}", package.created_at, "registered (CreationTime)")],
        ),
        status,
        _approval_fact(transitions, at, decisions, pushes, outside),
        *_reproducibility_facts(package, observations, at),
        _card_fact(package, observations, at),
    ]
    coverage = _coverage_fact(package, at)
    if coverage is not None:
        facts.append(coverage)
    return PackageAt(package, package.arn, facts, signoffs, decisions, outside)


def rollback_candidate(package: ModelPackage, at: dt.datetime, *, depth: int = 20) -> RollbackCandidate:
    """The highest earlier version of the same group that was Approved at ``at`` (three queries)."""
    earlier = list(
        ModelPackage.objects.filter(group_id=package.group_id, version__lt=package.version)
        .select_related("group")
        .defer("raw", "inference_specification", "model_metrics", "embedded_card_content")
        .order_by("-version")[:depth]
    )
    if not earlier:
        return RollbackCandidate(None, None, f"No version before v{package.version} in {package.group.name}.")
    observations = _observations_with([p.pk for p in earlier], "approval_status")
    events = _status_events(earlier)
    for candidate in earlier:
        transitions = _transitions(observations.get(candidate.pk, []), events.get(candidate.pk, []))
        fact, _ = _status_fact(candidate, transitions, at)
        if fact.value == ApprovalStatus.APPROVED and candidate.deleted_at is None:
            return RollbackCandidate(candidate, fact, f"v{candidate.version} was Approved at this time")
    checked = f"v{earlier[-1].version}–v{earlier[0].version}" if len(earlier) > 1 else f"v{earlier[0].version}"
    return RollbackCandidate(None, None, f"No earlier version was Approved at this time (checked {checked}).")


def _lookup_packages(deployments: list[EndpointDeployment]) -> dict[str, ModelPackage]:
    arns = {d.package_arn for d in deployments if d.package_id is None and d.package_arn}
    if not arns:
        return {}
    return {p.arn: p for p in ModelPackage.objects.filter(arn__in=arns).select_related("group", "model_card")}


def _no_window_answer(
    name: str, endpoint: Endpoint | None, at: dt.datetime
) -> tuple[bool, str, list[Evidence], list[str]]:
    """Why nothing is known to serve at ``at``: really nothing (before the endpoint existed, or after it
    stopped), or a gap in the evidence."""
    first = EndpointDeployment.objects.filter(endpoint_name_is(name)).order_by("started_at", "pk").first()
    created = (
        CloudTrailEvent.objects.filter(endpoint_name_is(name), event_name="CreateEndpoint", error_code="")
        .order_by("event_time", "pk")
        .first()
    )
    if created is not None and at < created.event_time:
        return (
            True,
            f"Nothing was deployed: {name} was created at {_iso(created.event_time)}.",
            [Evidence(f"cloudtrail:{created.event_id}", created.event_time, "CreateEndpoint")],
            [],
        )
    if endpoint is not None and endpoint.created_at is not None and at < endpoint.created_at:
        return (
            True,
            f"Nothing was deployed: {name} was created at {_iso(endpoint.created_at)}.",
            [Evidence(f"endpoint:{endpoint.arn}", endpoint.created_at, "CreationTime (DescribeEndpoint)")],
            [],
        )
    if first is None:
        return (
            False,
            f"No deployment of {name} is known.",
            [],
            [
                f"No deployment history is recorded for {name}: its CloudTrail history has not been ingested "
                "(or it never existed)."
            ],
        )
    if at < first.started_at:
        earliest = min(filter(None, [first.started_at, created.event_time if created else None]))
        return (
            False,
            f"No deployment known before {_iso(earliest)}.",
            _deployment_evidence(first),
            [f"No deployment known before {_iso(earliest)}: the endpoint's CloudTrail history starts then."],
        )
    previous = (
        EndpointDeployment.objects.filter(endpoint_name_is(name), ended_at__isnull=False, ended_at__lte=at)
        .order_by("-ended_at", "-pk")
        .first()
    )
    deleted = (
        CloudTrailEvent.objects.filter(
            endpoint_name_is(name), event_name="DeleteEndpoint", error_code="", event_time__lte=at
        )
        .order_by("-event_time", "-pk")
        .first()
    )
    evidence = _deployment_evidence(previous) if previous else []
    if deleted is not None:
        evidence.append(Evidence(f"cloudtrail:{deleted.event_id}", deleted.event_time, "DeleteEndpoint"))
        return True, f"Nothing was deployed: {name} was deleted at {_iso(deleted.event_time)}.", evidence, []
    ended = f" (the last known deployment ended at {_iso(previous.ended_at)})" if previous else ""
    return (
        False,
        f"No deployment window covers this time{ended}.",
        evidence,
        ["The deployment history has a gap here: no CloudTrail evidence says what (if anything) served then."],
    )


def as_of(endpoint_name: str, at: dt.datetime) -> AsOfAnswer:
    """What served ``endpoint_name`` at ``at``, with each fact's evidence, or what is missing."""
    endpoint = _pick_endpoint(endpoint_name)
    windows = list(
        EndpointDeployment.objects.filter(endpoint_name_is(endpoint_name), started_at__lte=at)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=at))
        .select_related("package__group", "package__model_card")
        .order_by("variant_name", "-started_at", "-pk")
    )
    if not windows:
        nothing, summary, evidence, missing = _no_window_answer(endpoint_name, endpoint, at)
        return AsOfAnswer(endpoint_name, at, endpoint, [], nothing, summary, evidence, missing)
    by_arn = _lookup_packages(windows)
    variants: list[VariantAt] = []
    missing: list[str] = []
    seen_variants: set[str] = set()
    for window in windows:
        if window.variant_name in seen_variants:
            missing.append(
                f"Overlapping deployment windows for variant {window.variant_name}; the newest is shown first."
            )
        seen_variants.add(window.variant_name)
        package = window.package or by_arn.get(window.package_arn)
        package_at = _package_at(package, window.package_arn, at)
        rollback = rollback_candidate(package, at) if package is not None else None
        variants.append(VariantAt(window, package_at, rollback))
        missing.extend(f"{window.variant_name}: deployment: {line}" for line in _deployment_missing(window))
        missing.extend(
            f"{window.variant_name}: {fact.name}: {fact.missing}" for fact in package_at.facts if fact.missing
        )
    names = ", ".join(
        f"{v.deployment.variant_name} → {v.package.package_arn or v.deployment.model_name}"
        + (f" (weight {v.deployment.weight:g})" if v.deployment.weight is not None else "")
        for v in variants
    )
    summary = f"{endpoint_name} served {names}."
    evidence = [e for v in variants for e in v.evidence]
    return AsOfAnswer(endpoint_name, at, endpoint, variants, False, summary, evidence, missing)


# --------------------------------------------------------------------------------------------- endpoint page


@dataclass
class EndpointOverview:
    name: str
    endpoint: Endpoint | None
    variants: list[EndpointVariant]
    history: list[EndpointDeployment]
    more_history: bool
    rollback: RollbackCandidate | None
    rollback_for: ModelPackage | None


ENDPOINT_HISTORY_SHOWN = 100


def endpoint_overview(name: str) -> EndpointOverview | None:
    """An endpoint's current variants, deployment windows (newest first) and rollback candidate;
    None when nothing at all is known about it."""
    endpoint = _pick_endpoint(name)
    variants = (
        list(
            EndpointVariant.objects.filter(endpoint=endpoint).select_related("package__group").order_by("variant_name")
        )
        if endpoint
        else []
    )
    history = list(
        EndpointDeployment.objects.filter(endpoint_name_is(name))
        .select_related("package__group")
        .order_by("-started_at", "-pk")[: ENDPOINT_HISTORY_SHOWN + 1]
    )
    if endpoint is None and not history and not CloudTrailEvent.objects.filter(endpoint_name_is(name)).exists():
        return None
    serving = [v.package for v in variants if v.package is not None]
    if not serving:
        serving = [d.package for d in history if d.ended_at is None and d.package is not None]
    primary = max(
        serving,
        key=lambda p: max((v.weight or 0.0) for v in variants if v.package_id == p.pk) if variants else 0.0,
        default=None,
    )
    rollback = rollback_candidate(primary, timezone.now()) if primary is not None else None
    return EndpointOverview(
        name=name,
        endpoint=endpoint,
        variants=variants,
        history=history[:ENDPOINT_HISTORY_SHOWN],
        more_history=len(history) > ENDPOINT_HISTORY_SHOWN,
        rollback=rollback,
        rollback_for=primary,
    )


# --------------------------------------------------------------------------------------------- lookups for views


def find_package(group_name: str, version: int, source_name: str | None = None) -> ModelPackage | None:
    packages = ModelPackage.objects.filter(group__name=group_name, version=version).select_related(
        "group__source", "source", "model_card"
    )
    if source_name:
        packages = packages.filter(group__source__name=source_name)
    return packages.order_by(F("group__deleted_at").asc(nulls_first=True), "group__source__name", "pk").first()


def find_group(name: str, source_name: str | None = None) -> ModelPackageGroup | None:
    groups = ModelPackageGroup.objects.filter(name=name).select_related("source")
    if source_name:
        groups = groups.filter(source__name=source_name)
    return groups.order_by(F("deleted_at").asc(nulls_first=True), "source__name", "pk").first()


def iter_dicts(items: Iterable[TimelineItem]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item.export_row()
