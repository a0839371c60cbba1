"""How far back each source's CloudTrail evidence reaches, and how its trail-history backfill is going.

Covered: from the oldest time an ingest has read *completely* on: LookupEvents from the start of its
first window; the trail's S3 files from the day the forward pass started, or, as the backfill goes
back day by day, from the oldest day it has finished (the trail's first file once it is done). The
as-of answer refuses a time before that ("before the covered range") rather than answer from
partial evidence; ``/sync/`` and ``/metrics`` show the backfill's progress. Reads only.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count

from registry_app.audit.events import parse_event_time
from registry_app.models import AuditAnchor, AuditCursor, AuditVerification, RegistrySource, TrailLogFile

__all__ = [
    "BackfillProgress",
    "EvidenceStatus",
    "SourceCoverage",
    "coverage_for",
    "evidence_overview",
    "evidence_status",
    "source_coverage",
]


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


@dataclass(frozen=True)
class BackfillProgress:
    """One trail folder's backfill (from the ``backfill`` cursor)."""

    root: str
    until: dt.date | None  # the forward pass's first day: the backfill reads the days before it
    first_day: dt.date | None  # the trail's oldest day folder
    next_day: dt.date | None  # the day being read (or next to read)
    done: bool
    days_done: int
    days_total: int
    events: int
    busy_seconds: float
    rebuilt_day: dt.date | None = None  # the oldest day the deployment histories reflect

    @property
    def oldest_complete_day(self) -> dt.date | None:
        """Covered: read, and reflected in the deployment histories (rebuilt every few minutes)."""
        if self.rebuilt_day is not None:
            return self.rebuilt_day
        return self.until

    @property
    def days_left(self) -> int:
        return 0 if self.done else max(0, self.days_total - self.days_done)

    @property
    def eta_seconds(self) -> float | None:
        """Days left × the time a day has taken so far (None until one day is done)."""
        if self.done:
            return 0.0
        if self.days_done <= 0 or self.busy_seconds <= 0:
            return None
        return self.days_left * self.busy_seconds / self.days_done

    @property
    def percent(self) -> float:
        return 100.0 if self.done or not self.days_total else min(100.0, 100.0 * self.days_done / self.days_total)


@dataclass
class SourceCoverage:
    source: RegistrySource
    lookup_from: dt.datetime | None = None
    s3_from: dt.date | None = None  # the forward pass's first day (oldest over trail folders)
    backfill: list[BackfillProgress] = field(default_factory=list)
    backfill_enabled: bool = True
    digests_seen: bool = False
    files: Counter[str] = field(default_factory=Counter)  # trail log files by validation state

    @property
    def trail_from(self) -> dt.date | None:
        """The oldest day of the trail read completely (forward pass, then the backfill)."""
        days = [b.oldest_complete_day for b in self.backfill if b.oldest_complete_day is not None]
        if days:
            return max(days)  # every folder must reach back that far
        return self.s3_from

    @property
    def covered_from(self) -> dt.datetime | None:
        starts = [t for t in (self.lookup_from, _start_of(self.trail_from) if self.trail_from else None) if t]
        return min(starts) if starts else None

    @property
    def backfill_done(self) -> bool:
        return bool(self.backfill) and all(b.done for b in self.backfill)

    @property
    def backfill_events(self) -> int:
        return sum(b.events for b in self.backfill)

    @property
    def eta_seconds(self) -> float | None:
        values = [b.eta_seconds for b in self.backfill]
        return None if any(v is None for v in values) else sum(v or 0.0 for v in values)

    def describe(self) -> str:
        """One sentence for people: from when the evidence is complete, and what is still coming."""
        if self.covered_from is None:
            return f"No CloudTrail evidence of {self.source.name} has been ingested yet."
        text = f"CloudTrail evidence of {self.source.name} is complete from {self.covered_from:%Y-%m-%d %H:%M} UTC"
        if not self.source.cloudtrail_bucket:
            return text + " (LookupEvents only: configure the trail's S3 bucket for older history)."
        if not self.backfill_enabled:
            return text + " (AUDIT_S3_INITIAL_DAYS is set: older trail files are not read)."
        if self.backfill_done:
            return text + " (the whole trail: its first file)."
        left = sum(b.days_left for b in self.backfill)
        if not self.backfill:
            return text + "; the backfill of the trail's older history has not started yet."
        eta = self.eta_seconds
        when = f", about {eta / 3600:.1f} h left" if eta is not None else ""
        return text + f"; the backfill of older history is in progress ({left} day(s) to go{when})."


def _lookup_from(position: Mapping[str, Any]) -> dt.datetime | None:
    passes = position.get("passes") or {}
    state = passes.get("sagemaker") if isinstance(passes, Mapping) else None
    if not isinstance(state, Mapping) or not state.get("done_until") or not state.get("covered_from"):
        return None  # the first window is not complete yet
    return parse_event_time(state["covered_from"])


def _progress(root: str, state: Mapping[str, Any]) -> BackfillProgress:
    return BackfillProgress(
        root=root,
        until=_date(state.get("until")),
        first_day=_date(state.get("first_day")),
        next_day=_date(state.get("next_day")),
        done=bool(state.get("done")),
        days_done=int(state.get("days_done") or 0),
        days_total=int(state.get("days_total") or 0),
        events=int(state.get("events") or 0),
        busy_seconds=float(state.get("busy_seconds") or 0.0),
        rebuilt_day=_date(state.get("rebuilt_day")),
    )


def _build(source: RegistrySource, cursors: Iterable[tuple[str, Any]]) -> SourceCoverage:
    coverage = SourceCoverage(source=source, backfill_enabled=getattr(settings, "AUDIT_S3_INITIAL_DAYS", None) is None)
    for kind, position in cursors:
        position = position if isinstance(position, Mapping) else {}
        roots = position.get("roots") if isinstance(position.get("roots"), Mapping) else {}
        if kind == AuditCursor.Kind.LOOKUP:
            coverage.lookup_from = _lookup_from(position)
        elif kind == AuditCursor.Kind.S3:
            days = [_date(state.get("covered_from")) for state in roots.values() if isinstance(state, Mapping)]
            known = [d for d in days if d is not None]
            coverage.s3_from = max(known) if known else None
            coverage.digests_seen = any(isinstance(s, Mapping) and s.get("digests_seen") for s in roots.values())
        elif kind == AuditCursor.Kind.BACKFILL and coverage.backfill_enabled:
            coverage.backfill = [_progress(r, s) for r, s in sorted(roots.items()) if isinstance(s, Mapping)]
    return coverage


_KINDS = [AuditCursor.Kind.LOOKUP, AuditCursor.Kind.S3, AuditCursor.Kind.BACKFILL]


def source_coverage(source: RegistrySource) -> SourceCoverage:
    """One source's coverage (one query)."""
    rows = AuditCursor.objects.filter(source=source, kind__in=_KINDS).values_list("kind", "position")
    return _build(source, rows)


def coverage_for(sources: Iterable[RegistrySource]) -> list[SourceCoverage]:
    """Several sources' coverage (one query)."""
    sources = list(sources)
    by_source: dict[int, list[tuple[str, Any]]] = {s.pk: [] for s in sources}
    rows = AuditCursor.objects.filter(source__in=sources, kind__in=_KINDS).values_list("source_id", "kind", "position")
    for source_id, kind, position in rows:
        by_source[source_id].append((kind, position))
    return [_build(source, by_source[source.pk]) for source in sources]


def evidence_overview() -> list[SourceCoverage]:
    """Every source's coverage and its trail files by validation state (three queries)."""
    coverages = coverage_for(RegistrySource.objects.order_by("name"))
    counts = (
        TrailLogFile.objects.filter(read_at__isnull=False)
        .order_by()
        .values_list("source_id", "state")
        .annotate(n=Count("pk"))
    )
    by_id = {c.source.pk: c for c in coverages}
    for source_id, state, n in counts:
        if source_id in by_id:
            by_id[source_id].files[state] += n
    return coverages


@dataclass
class EvidenceStatus:
    """The status page's evidence section: per source coverage, the newest anchor and verification."""

    sources: list[SourceCoverage]
    anchor: AuditAnchor | None
    verification: AuditVerification | None


def evidence_status() -> EvidenceStatus:
    """Five queries: sources, cursors, trail files by state, newest anchor, newest verification."""
    return EvidenceStatus(
        sources=evidence_overview(),
        anchor=AuditAnchor.objects.order_by("-anchored_at", "-pk").first(),
        verification=AuditVerification.objects.order_by("-started_at", "-pk").first(),
    )
