"""The trail's history, backfilled in the background: newest day first, in time-budgeted slices.

A new source's forward S3 pass starts yesterday (``ingest_s3.initial_start_day``); everything
before that day is read here, day folder by day folder going back, until the trail's first file
(its oldest day folder). Each slice (a Celery task on the ``audit`` queue, ``AUDIT_BACKFILL_SLICE_SECONDS``
long) holds the source's *backfill* lease, not the forward ingest's, so the 5-minute ingest, the
registry syncs and the pushes never wait for it; it re-enqueues itself until done.

Per day: the day's log files (the forward pass's machinery: threaded GETs, parsing processes,
groups committed with the cursor), then the day folder's digests when validation is on. The cursor
(``AuditCursor`` kind ``backfill``) holds per trail folder the day being read and the last key of
it stored, so a slice resumes exactly where the previous one stopped; and the progress figures
(days done out of days in all, events, busy seconds) that ``/sync/`` and ``/metrics`` show.

``AUDIT_S3_INITIAL_DAYS`` set opts out: then nothing older than the forward pass's start is read.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from registry_app.audit.deployments import rebuild_after_ingest
from registry_app.audit.ingest import analyze_after_rows, analyze_events_table
from registry_app.audit.ingest_run import (
    BACKFILL_LOCK_KIND,
    LockLost,
    PassResult,
    acquire_audit_lock,
    cursor_row,
    release_audit_lock,
)
from registry_app.audit.ingest_s3 import S3Pass, day_of_listing, s3_initial_days
from registry_app.audit.trail_files import is_log_key
from registry_app.aws.cloudtrail import CloudTrailReader, LogObject
from registry_app.aws.errors import AwsError
from registry_app.aws.session import CallStats, SourceConfig
from registry_app.models import AuditCursor, CloudTrailEvent, RegistrySource

__all__ = ["BackfillResult", "backfill_enabled", "backfill_source", "sources_to_backfill"]

Kind = AuditCursor.Kind


def backfill_enabled() -> bool:
    return s3_initial_days() is None


def _nice() -> int:
    # The slice's parsing processes run at this niceness: history can wait, a push or a page cannot.
    return int(getattr(settings, "AUDIT_BACKFILL_NICE", 10))


def rebuild_seconds() -> int:
    # Deployment histories are rebuilt (and the planner's statistics refreshed) at most this often,
    # and when the backfill ends: the as-of answer covers the days read up to the last rebuild.
    return int(getattr(settings, "AUDIT_BACKFILL_REBUILD_SECONDS", 600))


@dataclass
class BackfillResult:
    source: str
    skipped: bool = False
    done: bool = False
    more: bool = False  # another slice is needed
    days: int = 0
    s3: PassResult = field(default_factory=PassResult)
    note: str = ""
    duration_s: float = 0.0
    deployments_rebuilt: list[str] = field(default_factory=list)
    aws_calls: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        if self.skipped:
            return f"{self.source}: backfill skipped ({self.note or 'another slice holds the lease'})"
        state = "done" if self.done else ("more to read" if self.more else "waiting")
        return (
            f"{self.source}: backfill {state}: {self.days} day(s), {self.s3.pages} files, {self.s3.inserted} new "
            f"events in {self.duration_s:.1f}s" + (f" — {self.note}" if self.note else "")
        )


class Backfill(S3Pass):
    """One slice: trail folders' older days, newest first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worked: set[str] = set()  # the trail folders this slice read

    def backfill_root(self, root: str, until: dt.date, roots_state: dict[str, Any], result: BackfillResult) -> bool:
        """Read the days before ``until`` going back, as one listing across day folders (so GETs and
        parsing never drain at a day's end); then the digests of the day folders listed. False when
        the slice ran out (the cursor holds the day and key to resume at)."""
        self.worked.add(root)
        state = dict(roots_state.get(root) or {})
        state.setdefault("until", until.isoformat())
        state.setdefault("started_at", timezone.now().isoformat())
        if "first_day" not in state:
            first = self._first_day(root)
            state["first_day"] = first.isoformat() if first else state["until"]
        until_day, first_day = dt.date.fromisoformat(state["until"]), dt.date.fromisoformat(state["first_day"])
        state["days_total"] = max(0, (until_day - first_day).days)
        start_day = dt.date.fromisoformat(state.get("next_day") or (until_day - _DAY).isoformat())
        roots_state[root] = state
        if start_day < first_day:
            return self._finish(root, state, roots_state)
        position = dict(cursor_row(self.source, Kind.BACKFILL).position or {})
        failed: dict[str, str] = dict(position.get("failed") or {})
        events_before = int(state.get("events") or 0) - result.s3.inserted
        reached = {"day": start_day}

        def advance(keys: list[str]) -> dict[str, Any]:
            day = day_of_listing(root, keys[-1]) or start_day  # the listing's order: the last key is the furthest
            state.update(
                next_day=day.isoformat(),
                last_key=keys[-1],
                days_done=max(0, (until_day - day).days - 1),
                events=events_before + result.s3.inserted,
            )
            roots_state[root] = state
            out = {**position, "roots": roots_state}
            if failed:
                out["failed"] = dict(list(failed.items())[-500:])
            return out

        listing = self._history(root, start_day, state.get("last_key") or "", first_day, reached, result.s3)
        complete = self.read_files(listing, advance, failed, Kind.BACKFILL, root, result.s3, eager=True, nice=_nice())
        result.days += max(0, (start_day - reached["day"]).days + (1 if complete else 0))
        if self.validating():
            self.check_digests(
                root, from_day=reached["day"], until_day=start_day + _DAY, result=result.s3, budget=False
            )
        state["events"] = events_before + result.s3.inserted
        if complete:
            return self._finish(root, state, roots_state)
        roots_state[root] = state
        self._save(roots_state)
        return False

    def _finish(self, root: str, state: dict[str, Any], roots_state: dict[str, Any]) -> bool:
        first_day = dt.date.fromisoformat(state["first_day"])
        roots_state[root] = {
            **state,
            "done": True,
            "finished_at": timezone.now().isoformat(),
            "next_day": (first_day - _DAY).isoformat(),
            "last_key": "",
            "days_done": state.get("days_total", 0),
        }
        self._save(roots_state)
        return True

    def _first_day(self, root: str) -> dt.date | None:
        """The trail's oldest day folder: the first log key under the folder (keys sort by day)."""
        for page in self.reader.iter_objects(self.source.cloudtrail_bucket, root):
            for obj in page:
                if is_log_key(obj.key):
                    return day_of_listing(root, obj.key)
        return None

    def _history(
        self,
        root: str,
        day: dt.date,
        start_after: str,
        first_day: dt.date,
        reached: dict[str, dt.date],
        result: PassResult,
    ) -> Iterator[LogObject]:
        """The log files of day folders ``day``, ``day - 1``, ... ``first_day``: newest day first, each
        day's files in key order; ``reached`` holds the day being listed."""
        while day >= first_day:
            reached["day"] = day
            prefix = f"{root}{day:%Y/%m/%d}/"
            for page in self.reader.iter_objects(self.source.cloudtrail_bucket, prefix, start_after=start_after):
                for obj in page:
                    if is_log_key(obj.key):
                        yield obj
                    else:
                        result.skipped_files += 1
            start_after = ""
            day -= _DAY

    def _save(self, roots_state: dict[str, Any]) -> None:
        self.update_roots(Kind.BACKFILL, roots_state)


_DAY = dt.timedelta(days=1)


def _forward_starts(source: RegistrySource) -> dict[str, dt.date]:
    """Per trail folder, the day the forward pass started reading at (the backfill's upper bound)."""
    roots = (cursor_row(source, Kind.S3).position or {}).get("roots") or {}
    return {
        root: dt.date.fromisoformat(state["covered_from"])
        for root, state in roots.items()
        if isinstance(state, dict) and state.get("covered_from")
    }


def sources_to_backfill() -> list[int]:
    """Enabled sources with a trail bucket whose backfill is not finished (or not started)."""
    if not backfill_enabled():
        return []
    out = []
    for source in RegistrySource.objects.filter(enabled=True).exclude(cloudtrail_bucket=""):
        starts = _forward_starts(source)
        roots = (cursor_row(source, Kind.BACKFILL).position or {}).get("roots") or {}
        if starts and any(not (roots.get(root) or {}).get("done") for root in starts):
            out.append(source.pk)
    return out


def backfill_source(
    source: RegistrySource,
    *,
    max_seconds: float | None = None,
    reader: CloudTrailReader | None = None,
    clock: Callable[[], dt.datetime] = timezone.now,
) -> BackfillResult:
    """One slice of the source's history backfill (at most ``max_seconds``); see the module doc.

    Transactions: each group of files commits with the backfill cursor; each digest on its own.
    Afterwards: statistics after a large insert, and the deployment history of the endpoints the
    slice's events touched is rebuilt (so the as-of answer covers the days read).
    """
    result = BackfillResult(source=source.name)
    if not source.cloudtrail_bucket or not backfill_enabled():
        result.note = "no trail bucket" if not source.cloudtrail_bucket else "AUDIT_S3_INITIAL_DAYS is set (opt-out)"
        return result
    starts = _forward_starts(source)
    if not starts:
        result.note = "waiting for the first S3 pass of the 5-minute ingest"
        return result
    token = acquire_audit_lock(source, kind=BACKFILL_LOCK_KIND)
    if token is None:
        result.skipped = True
        return result
    started = time.perf_counter()
    stats = reader.stats if reader is not None else CallStats()
    try:
        reader = reader or CloudTrailReader(SourceConfig.from_source(source), stats, account=source.account_id)
        run = Backfill(
            source, reader, lock_token=token, lock_kind=BACKFILL_LOCK_KIND, max_seconds=max_seconds, clock=clock
        )
        roots_state: dict[str, Any] = dict((cursor_row(source, Kind.BACKFILL).position or {}).get("roots") or {})
        result.done = True
        try:
            for root, until in sorted(starts.items()):
                if (roots_state.get(root) or {}).get("done"):
                    continue
                if not run.backfill_root(root, until, roots_state, result):
                    result.done, result.more = False, True
                    break
        except LockLost as exc:
            result.done, result.more = False, True
            result.s3.error(str(exc))
        except AwsError as exc:
            result.done, result.more = False, True
            result.s3.error(f"backfill: {exc}")
        result.s3.ran = True
        _account(run, time.perf_counter() - started)
        if run.validating():
            run.settle_unlisted()
        result.deployments_rebuilt = _rebuild_if_due(run, result.done)
    finally:
        release_audit_lock(source, token, kind=BACKFILL_LOCK_KIND)
        result.duration_s = round(time.perf_counter() - started, 3)
        result.aws_calls = stats.as_dict()
    return result


def _rebuild_if_due(run: Backfill, done: bool) -> list[str]:
    """Every ``rebuild_seconds`` and at the end: ANALYZE, then rebuild the deployment history of every
    endpoint the source's events name (history read newest first brings a window's CreateModel and
    CreateEndpointConfig after its UpdateEndpoint, so all of them, not only this slice's); the days
    read so far then count as covered (``rebuilt_day``)."""
    source = run.source
    position = dict(cursor_row(source, Kind.BACKFILL).position or {})
    now = timezone.now()
    last = position.get("rebuilt_at")
    if last is None:
        _set_fields(source, {"rebuilt_at": now.isoformat()})  # the first rebuild comes after a full period
    due = done or (last is not None and (now - dt.datetime.fromisoformat(last)).total_seconds() >= rebuild_seconds())
    if not due:
        return []
    analyze_events_table(max(1, analyze_after_rows()))
    names = set(
        CloudTrailEvent.objects.filter(source=source)
        .exclude(endpoint_name="")
        .annotate(name=Lower("endpoint_name"))
        .values_list("name", flat=True)
        .distinct()
    )
    rebuilt = rebuild_after_ingest(source, endpoints=names | run.touched.endpoints, configs=run.touched.configs)
    roots = position.get("roots") or {}
    covered = {
        root: {"rebuilt_day": state.get("first_day") if state.get("done") else _day_after(state.get("next_day"))}
        for root, state in roots.items()
        if isinstance(state, dict)
    }
    run.update_roots(Kind.BACKFILL, covered)
    _set_fields(source, {"rebuilt_at": now.isoformat()})
    return rebuilt


def _day_after(day: str | None) -> str | None:
    return (dt.date.fromisoformat(day) + _DAY).isoformat() if day else None


def _set_fields(source: RegistrySource, fields: dict[str, Any]) -> None:
    with transaction.atomic():
        row = AuditCursor.objects.select_for_update().get(pk=cursor_row(source, Kind.BACKFILL).pk)
        AuditCursor.objects.filter(pk=row.pk).update(position={**(row.position or {}), **fields})


def _account(run: Backfill, seconds: float) -> None:
    """Add this slice's busy time to the folders it read (the ETA is days left × time per day)."""
    if not run.worked:
        return
    roots = (cursor_row(run.source, Kind.BACKFILL).position or {}).get("roots") or {}
    share = seconds / len(run.worked)
    run.update_roots(
        Kind.BACKFILL,
        {
            root: {"busy_seconds": round(float((roots.get(root) or {}).get("busy_seconds") or 0.0) + share, 3)}
            for root in run.worked
        },
    )
