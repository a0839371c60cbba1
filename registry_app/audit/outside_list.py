"""Every registry decision the dashboard did not push, in one list (``/audit/bypasses/``), each marked
*before governance* (made before the dashboard first mirrored the package's group) or *while governed*.

Two kinds of entries, merged newest first and paged by keyset (``paging.Cursor``):

- ``outside``: the ``OutsideDecision`` rows the sync flagged (a status change the mirror saw and no
  push explains), with their CloudTrail call when one was matched;
- ``cloudtrail``: an ingested ``UpdateModelPackage`` / ``CreateModelPackage`` call that set Approved
  or Rejected, that no flagged row claims and that no dashboard push explains (the CloudTrail backfill
  finds the decisions made before the dashboard watched; the mirror never saw those change).

The as-of answer and the timelines mark the same decisions with the same words (``phase_label``)
and link to the same entry (``entry_url``: the page that starts at the entry, and its anchor).
Reads only; a page is three queries whatever its size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.http import urlencode

from registry_app.audit.outside_rules import PUSH_EXPLAINS_WITHIN, STATUS_EVENT_NAMES, request_status
from registry_app.audit.paging import PAGE_SIZE, Cursor, int_ident
from registry_app.models import CloudTrailEvent, ModelPackage, OutsideDecision, PushOutbox
from registry_app.models.registry import ApprovalStatus

__all__ = [
    "BEFORE",
    "DURING",
    "OutsideEntry",
    "OutsideMark",
    "OutsidePage",
    "entry_url",
    "marks_for_events",
    "outside_page",
    "outside_stream",
    "phase_label",
    "phase_of",
]

BEFORE, DURING = "before", "during"
PHASES = {
    BEFORE: "Outside the dashboard, before governance",
    DURING: "Outside the dashboard, while governed",
}
PHASE_NOTES = {
    BEFORE: "made before the dashboard first mirrored this group, so no review could have applied",
    DURING: "made while the dashboard governed this group: the manual review was bypassed",
}
DECISIONS = (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
STREAMS = ("cloudtrail", "outside")  # cursor sources, in their sort order


def phase_label(phase: str) -> str:
    return PHASES.get(phase, PHASES[DURING])


def phase_of(at: dt.datetime | None, package: ModelPackage) -> str:
    """Before the dashboard first mirrored the package's group (its governance start), or during."""
    since = package.group.first_seen_at
    return BEFORE if at is not None and since is not None and at < since else DURING


def entry_url(anchor: str, at: dt.datetime) -> str:
    """The bypasses page that starts at an entry of time ``at`` (its newest-first position), with
    the entry's anchor."""
    start = Cursor(at + dt.timedelta(microseconds=1), "outside", int_ident(0))
    return f"{reverse('registry:audit_bypasses')}?{urlencode({'before': start.encode()})}#{anchor}"


@dataclass(frozen=True)
class OutsideMark:
    """How a decision made outside the dashboard is shown wherever it appears."""

    phase: str
    anchor: str
    at: dt.datetime

    @property
    def label(self) -> str:
        return phase_label(self.phase)

    @property
    def note(self) -> str:
        return PHASE_NOTES[self.phase]

    @property
    def url(self) -> str:
        return entry_url(self.anchor, self.at)


@dataclass
class OutsideEntry:
    source: str  # "outside" (a flagged row) or "cloudtrail" (a call only CloudTrail knows)
    pk: int
    at: dt.datetime
    package: ModelPackage
    from_status: str
    to_status: str
    actor: str
    actor_arn: str
    changed_at: dt.datetime | None
    event: CloudTrailEvent | None
    notified_at: dt.datetime | None
    phase: str

    @property
    def key(self) -> tuple[dt.datetime, str, str]:
        return (self.at, self.source, int_ident(self.pk))

    @property
    def anchor(self) -> str:
        return f"{self.source}-{self.pk}"

    @property
    def label(self) -> str:
        return phase_label(self.phase)

    @property
    def evidence_id(self) -> str:
        if self.event is not None:
            return f"cloudtrail:{self.event.event_id}"
        return f"outside_decision:{self.pk}"

    def export_row(self) -> dict[str, Any]:
        from registry_app.audit.values import iso

        return {
            "entry": self.anchor,
            "governance": self.phase,
            "group": self.package.group.name,
            "version": self.package.version,
            "package_arn": self.package.arn,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "observed_at": iso(self.at) if self.source == "outside" else "",
            "changed_at": iso(self.changed_at),
            "actor_name": self.actor,
            "actor_arn": self.actor_arn,
            "cloudtrail_event_id": self.event.event_id if self.event else "",
            "notified_at": iso(self.notified_at),
            "evidence_id": self.evidence_id,
        }


@dataclass
class OutsidePage:
    entries: list[OutsideEntry]
    older: Cursor | None
    to_status: str
    phase: str


# --------------------------------------------------------------------------------------------- marks


def _explained(event: CloudTrailEvent, status: str, pushes: list[PushOutbox]) -> bool:
    """A push of the dashboard sent (or being sent) to this status close to the call explains it."""
    for push in pushes:
        sent = push.sent_at or push.updated_at or push.created_at
        if push.target_status == status and abs(event.event_time - sent) <= PUSH_EXPLAINS_WITHIN:
            return True
    return False


def _pushes(package_ids: Iterable[int]) -> dict[int, list[PushOutbox]]:
    found: dict[int, list[PushOutbox]] = {}
    ids = sorted(set(package_ids))
    if not ids:
        return found
    rows = PushOutbox.objects.filter(
        package_id__in=ids, state__in=(PushOutbox.State.SENT, PushOutbox.State.SENDING)
    ).only("package_id", "target_status", "sent_at", "updated_at", "created_at")
    for push in rows:
        found.setdefault(push.package_id, []).append(push)
    return found


def marks_for_events(events: list[CloudTrailEvent]) -> dict[int, OutsideMark]:
    """For CloudTrail calls (with ``package__group`` loaded): the mark of each one that is a decision
    the dashboard did not push, by event pk. Two queries (pushes, flagged rows), none without decisions."""
    decisions = [e for e in events if e.package_id and not e.error_code and request_status(e.raw) in DECISIONS]
    if not decisions:
        return {}
    flagged = {
        row.event_id: row
        for row in OutsideDecision.objects.filter(event_id__in=[e.pk for e in decisions]).only(
            "pk", "event_id", "observed_at", "changed_at"
        )
    }
    pushes = _pushes(e.package_id for e in decisions if e.pk not in flagged)
    marks = {}
    for event in decisions:
        row = flagged.get(event.pk)
        if row is not None:
            at = row.changed_at or row.observed_at
            marks[event.pk] = OutsideMark(phase_of(at, event.package), f"outside-{row.pk}", row.observed_at)
        elif not _explained(event, request_status(event.raw), pushes.get(event.package_id, [])):
            at = event.event_time
            marks[event.pk] = OutsideMark(phase_of(at, event.package), f"cloudtrail-{event.pk}", at)
    return marks


def mark_for_flagged(row: OutsideDecision) -> OutsideMark:
    """The mark of a flagged row (with ``package__group`` loaded)."""
    return OutsideMark(phase_of(row.changed_at or row.observed_at, row.package), f"outside-{row.pk}", row.observed_at)


# --------------------------------------------------------------------------------------------- the list


def _older_than(field: str, source: str, cursor: Cursor) -> Q:
    """``(at, source, pk) < cursor`` for one stream (its ``source`` fixed), as an index range."""
    if source < cursor.source:
        return Q(**{f"{field}__lte": cursor.at})
    if source > cursor.source:
        return Q(**{f"{field}__lt": cursor.at})
    return Q(**{f"{field}__lt": cursor.at}) | Q(**{field: cursor.at, "pk__lt": int(cursor.ident)})


def _flagged_rows(to_status: str, before: Cursor | None, limit: int) -> list[OutsideDecision]:
    qs: QuerySet[OutsideDecision] = OutsideDecision.objects.select_related("package__group__source", "event")
    if to_status:
        qs = qs.filter(to_status=to_status)
    if before is not None:
        qs = qs.filter(observed_at__lte=before.at).filter(_older_than("observed_at", "outside", before))
    return list(qs.order_by("-observed_at", "-pk")[: limit + 1])


def _call_rows(before: Cursor | None, limit: int) -> list[CloudTrailEvent]:
    qs = (
        CloudTrailEvent.objects.filter(
            package__isnull=False, event_name__in=STATUS_EVENT_NAMES, error_code="", outsidedecision__isnull=True
        )
        .select_related("package__group__source")
        .defer("package__raw", "package__inference_specification", "package__model_metrics")
    )
    if before is not None:
        qs = qs.filter(event_time__lte=before.at).filter(_older_than("event_time", "cloudtrail", before))
    return list(qs.order_by("-event_time", "-pk")[: limit + 1])


def _flagged_entry(row: OutsideDecision) -> OutsideEntry:
    return OutsideEntry(
        "outside", row.pk, row.observed_at, row.package, row.from_status, row.to_status, row.actor_name,
        row.actor_arn, row.changed_at, row.event, row.notified_at, mark_for_flagged(row).phase,
    )  # fmt: skip


def _call_entry(event: CloudTrailEvent, mark: OutsideMark) -> OutsideEntry:
    return OutsideEntry(
        "cloudtrail", event.pk, event.event_time, event.package, "", request_status(event.raw), event.actor_name,
        event.actor_arn, event.event_time, event, None, mark.phase,
    )  # fmt: skip


def outside_page(
    *, to_status: str = "", phase: str = "", before: Cursor | None = None, limit: int = PAGE_SIZE
) -> OutsidePage:
    """One page, newest first. Rows a stream fetched but the filters drop (a call a push explains, the
    other phase) still move the cursor, so a page may hold fewer than ``limit`` entries. Queries: 4."""
    flagged = _flagged_rows(to_status, before, limit)
    calls = _call_rows(before, limit)
    marks = marks_for_events(calls)
    horizons = []  # the oldest key each stream has fully read, when it has more
    for rows, source, field in ((flagged, "outside", "observed_at"), (calls, "cloudtrail", "event_time")):
        if len(rows) > limit:
            horizons.append((getattr(rows[limit - 1], field), source, int_ident(rows[limit - 1].pk)))
    candidates = [_flagged_entry(row) for row in flagged[:limit]]
    candidates += [_call_entry(e, marks[e.pk]) for e in calls[:limit] if e.pk in marks]
    candidates = [
        c for c in candidates if (not to_status or c.to_status == to_status) and (not phase or c.phase == phase)
    ]
    horizon = max(horizons) if horizons else None
    ready = sorted((c for c in candidates if horizon is None or c.key >= horizon), key=lambda c: c.key, reverse=True)
    entries = ready[:limit]
    older = None
    if len(ready) > limit:
        older = Cursor(*entries[-1].key)
    elif horizon is not None:
        older = Cursor(*horizon)
    return OutsidePage(entries, older, to_status, phase)


def outside_stream(*, to_status: str = "", phase: str = "", chunk: int = 500) -> Iterator[OutsideEntry]:
    """Every entry, newest first, page after page (for exports)."""
    before = None
    while True:
        page = outside_page(to_status=to_status, phase=phase, before=before, limit=chunk)
        yield from page.entries
        if page.older is None:
            return
        before = page.older


# --------------------------------------------------------------------------------------------- timelines


def mark_items(items: list[Any]) -> None:
    """Set ``item.outside`` (an ``OutsideMark``) on the timeline items that are decisions the dashboard
    did not push: approval-status CloudTrail calls and ``outside_decision.flagged`` audit entries.
    At most four queries, none when the page holds neither."""
    calls = {
        int(i.ident): i
        for i in items
        if i.source == "cloudtrail" and i.title in STATUS_EVENT_NAMES and request_status(i.raw) in DECISIONS
    }
    flagged = {}
    for item in items:
        subject = item.raw.get("subject_id") if isinstance(item.raw, dict) else None
        if item.source == "audit" and item.title == "outside_decision.flagged" and str(subject or "").isdigit():
            flagged.setdefault(int(subject), []).append(item)
    if calls:
        events = list(
            CloudTrailEvent.objects.filter(pk__in=list(calls), package__isnull=False)
            .select_related("package__group")
            .only("pk", "event_time", "error_code", "raw", "package_id", "package__group__first_seen_at")
        )
        for pk, mark in marks_for_events(events).items():
            calls[pk].outside = mark
    if flagged:
        rows = OutsideDecision.objects.filter(pk__in=list(flagged)).select_related("package__group")
        for row in rows.only("pk", "observed_at", "changed_at", "package__group__first_seen_at"):
            for item in flagged[row.pk]:
                item.outside = mark_for_flagged(row)
