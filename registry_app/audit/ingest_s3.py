"""The S3 pass of the CloudTrail ingest: the trail's log files as they arrive, and their digests.

Runs when ``cloudtrail_bucket`` is set: ``<prefix>/AWSLogs/[<o-id>/]<account>/CloudTrail/<region>/``
listed with ``StartAfter`` from the stored last key (rewound a few minutes, keys already read
skipped: files delivered in the same minute can sort before the last one read); each group of files'
events and the cursor commit together; a corrupt file is recorded and skipped, a retryable failure
stops the pass before that file. GETs run on threads, parsing moves to worker processes for a backlog.

A new source's first pass starts yesterday (``AUDIT_S3_INITIAL_DAYS`` set: that many days back, and
nothing older is read): the history before that is the background backfill's (``backfill``), newest
first. With digest validation on (``AUDIT_DIGEST_VALIDATION``, the default) each file's SHA-256 is
taken as it is parsed and the pass then checks the trail's new digest files (``digest_ingest``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry_app.audit.digest_ingest import DigestPass, digest_validation
from registry_app.audit.digests import digest_key_time
from registry_app.audit.events import PreparedRow
from registry_app.audit.ingest_parse import Parser, parse_process_min_files, prepare_rows, sqlite_cache
from registry_app.audit.ingest_run import PassResult, cursor_row
from registry_app.audit.trail_evidence import ReadFile
from registry_app.audit.trail_files import (
    LogFileError,
    awslogs_prefix,
    day_start_after,
    delivery_time,
    is_log_key,
    rewound_start_after,
    trail_root,
)
from registry_app.aws.cloudtrail import LogObject
from registry_app.aws.errors import AwsError, RetryableAwsError
from registry_app.models import AuditCursor, CloudTrailEvent

__all__ = ["S3Pass", "commit_events", "initial_start_day", "s3_initial_days", "s3_overlap"]

# The ingest logs under one name, whichever of its modules writes the line.
log = logging.getLogger("registry_app.audit.ingest")

MAX_FAILED_FILES_KEPT = 500
FORWARD_START_DAYS = 1  # a new source's first pass starts this far back; the backfill reads the rest

# Old names, kept for callers and tests that reach into the pass.
_Parser = Parser
_prepare_rows = prepare_rows

Fetched = tuple[int, list[PreparedRow], str]


def s3_overlap() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "AUDIT_S3_OVERLAP_SECONDS", 600)))


def s3_initial_days() -> int | None:
    """``AUDIT_S3_INITIAL_DAYS``: None (the default) reads the whole trail (backfilled in the
    background); a number limits a new source's history to that many days (no backfill)."""
    value = getattr(settings, "AUDIT_S3_INITIAL_DAYS", None)
    return None if value in (None, "") else int(value)


def initial_start_day(now: dt.datetime) -> dt.date:
    days = s3_initial_days()
    return (now - dt.timedelta(days=FORWARD_START_DAYS if days is None else days)).date()


def commit_events() -> int:
    # S3 files are committed in groups of about this many events (with the cursor after the last file).
    return int(getattr(settings, "AUDIT_COMMIT_EVENTS", 10_000))


def day_of_listing(root: str, start_after: str) -> dt.date | None:
    """The day folder a ``StartAfter`` under ``root`` begins with (``.../2025/03/10/...``)."""
    try:
        return dt.datetime.strptime(start_after[len(root) : len(root) + 10], "%Y/%m/%d").date()
    except ValueError:
        return None


class S3Pass(DigestPass):
    """The trail's S3 log files, one trail folder (``AWSLogs/<account>/CloudTrail/<region>/``) at a time."""

    def roots(self) -> list[str]:
        bucket, prefix = self.source.cloudtrail_bucket, self.source.cloudtrail_prefix
        account, region = self.source.account_id, self.source.region
        base = awslogs_prefix(prefix)
        out = []
        for entry in self.reader.list_prefixes(bucket, base):
            name = entry[len(base) :].strip("/")
            if name.startswith("o-"):
                for sub in self.reader.list_prefixes(bucket, entry):
                    member = sub[len(entry) :].strip("/")
                    if member.isdigit() and (not account or member == account):
                        out.append(trail_root(prefix, member, region, org_id=name))
            elif name.isdigit() and (not account or name == account):
                out.append(trail_root(prefix, name, region))
        return out

    def validating(self) -> bool:
        return digest_validation()

    def run_s3(self, result: PassResult) -> None:
        if not self.source.cloudtrail_bucket:
            result.note = "no CloudTrail bucket configured for this source"
            return
        result.ran = True
        with sqlite_cache(int(getattr(settings, "AUDIT_SQLITE_CACHE_MB", 256))):
            self._run_s3(result)

    def _run_s3(self, result: PassResult) -> None:
        cursor = cursor_row(self.source, AuditCursor.Kind.S3)
        position: dict[str, Any] = dict(cursor.position or {})
        roots_state: dict[str, Any] = dict(position.get("roots") or {})
        try:
            roots = self.roots()
        except AwsError as exc:
            result.error(f"listing s3://{self.source.cloudtrail_bucket}: {exc}")
            return
        if not roots:
            result.note = "no AWSLogs/<account>/CloudTrail/<region>/ folder in the bucket yet"
        complete = True
        for root in roots:
            if not self._s3_root(root, roots_state, position, result):
                complete = False
                break
        if self.validating() and not self.out_of_time():
            try:
                for root in roots:
                    self._forward_digests(root, result)
                self.recheck_unchecked(result)
            except AwsError as exc:
                result.error(f"digests: {exc} (checked again next run)")
            self.settle_unlisted()
        result.complete = complete

    # -- the forward listing -----------------------------------------------------------------
    def _start_after(self, root: str, state: dict[str, Any]) -> tuple[str, set[str]]:
        if self.since is not None:
            return day_start_after(root, self.since), set()
        last = state.get("last_key") or ""
        if last:
            return rewound_start_after(root, last, s3_overlap()), {*state.get("recent", []), last}
        return day_start_after(root, initial_start_day(self.clock())), set()

    def _listed(self, root: str, start_after: str, seen: set[str], result: PassResult) -> Iterator[LogObject]:
        bucket = self.source.cloudtrail_bucket
        for page in self.reader.iter_objects(bucket, root, start_after=start_after):
            for obj in page:
                if obj.key in seen:
                    continue
                if not is_log_key(obj.key):
                    result.skipped_files += 1
                    continue
                yield obj

    def update_roots(self, kind: str, changes: dict[str, dict[str, Any]]) -> None:
        """Merge per-root fields into the stored cursor (read again: a commit may have moved it)."""
        with transaction.atomic():
            row = AuditCursor.objects.select_for_update().get(pk=cursor_row(self.source, kind).pk)
            position = dict(row.position or {})
            roots = dict(position.get("roots") or {})
            for root, fields in changes.items():
                roots[root] = {**(roots.get(root) or {}), **fields}
            position["roots"] = roots
            AuditCursor.objects.filter(pk=row.pk).update(position=position, updated_at=timezone.now())

    def _s3_root(self, root: str, roots_state: dict[str, Any], position: dict[str, Any], result: PassResult) -> bool:
        """Read one trail folder's new files in key order; commit files in groups with the cursor."""
        state = dict(roots_state.get(root) or {})
        start_after, seen = self._start_after(root, state)
        first_day = day_of_listing(root, start_after)
        if first_day is not None and (not state.get("covered_from") or first_day.isoformat() < state["covered_from"]):
            state["covered_from"] = first_day.isoformat()  # the oldest day this pass has read from
            roots_state[root] = state
            self.update_roots(AuditCursor.Kind.S3, {root: {"covered_from": state["covered_from"]}})
        recent: dict[str, None] = dict.fromkeys(state.get("recent", []))
        failed: dict[str, str] = dict(position.get("failed") or {})

        def advance(keys: list[str]) -> dict[str, Any]:
            nonlocal state, recent, position
            last = max([state.get("last_key") or "", *keys])
            for key in keys:
                recent[key] = None
            kept = _recent_keys(recent, last, s3_overlap())
            recent = dict.fromkeys(kept)
            state = {**state, "last_key": last, "recent": kept}
            roots_state[root] = state
            position = {**position, "roots": roots_state}
            if failed:
                position["failed"] = dict(list(failed.items())[-MAX_FAILED_FILES_KEPT:])
            return position

        listing = self._listed(root, start_after, seen, result)
        return self.read_files(listing, advance, failed, AuditCursor.Kind.S3, root, result)

    def _forward_digests(self, root: str, result: PassResult) -> None:
        """Check the digests delivered since the last run (the newest day folder is listed again)."""
        state = (cursor_row(self.source, AuditCursor.Kind.S3).position or {}).get("roots", {}).get(root) or {}
        start = state.get("digest_day") or state.get("covered_from")
        day = dt.date.fromisoformat(start) if start else initial_start_day(self.clock())
        listed, newest = self.check_digests(root, from_day=day, until_day=None, result=result)
        newest_at = digest_key_time(newest) if newest else None
        fields: dict[str, Any] = {"digest_day": max(day, newest_at.date() if newest_at else day).isoformat()}
        if listed:
            fields["digests_seen"] = True
        self.update_roots(AuditCursor.Kind.S3, {root: fields})

    # -- reading files (shared with the backfill) ---------------------------------------------
    def _fetch(self, key: str, parser: Parser) -> Fetched:
        body = self.reader.get_bytes(self.source.cloudtrail_bucket, key)
        return parser.parse(body, delivery_time(key) or self.clock(), self.validating())

    def read_files(
        self,
        listing: Iterator[LogObject],
        advance: Callable[[list[str]], dict[str, Any]],
        failed: dict[str, str],
        kind: str,
        where: str,
        result: PassResult,
        *,
        eager: bool = False,
        nice: int = 0,
    ) -> bool:
        """Read the listed files; commit them in groups with the cursor position ``advance`` gives.

        GETs run on threads; parsing moves to worker processes once the backlog is large (a
        backfill), so the calling thread only links and inserts. A group is committed at
        ``AUDIT_COMMIT_EVENTS`` events or after a second. Returns False when it stopped early
        (time budget, a retryable failure): the cursor then points after the last file stored.
        """
        bucket = self.source.cloudtrail_bucket
        pending: list[tuple[str, Future[Fetched]]] = []
        group: list[tuple[ReadFile, list[PreparedRow]]] = []
        keys: list[str] = []
        group_events = 0
        group_started = time.monotonic()
        listed = 0
        parser = Parser(nice=nice)
        hashing = self.validating()

        def flush() -> None:
            nonlocal group, keys, group_events, group_started
            if not keys:
                return
            files = [item for item in group if item[0].sha256] if hashing else None  # unreadable files: no row
            events = [] if files else [event for _, file_events in group for event in file_events]
            self._commit(kind, events, CloudTrailEvent.Via.S3, advance(keys), result, files=files)
            group, keys, group_events, group_started = [], [], 0, time.monotonic()

        try:
            with ThreadPoolExecutor(max_workers=self.prefetch, thread_name_prefix="ct-s3") as pool:

                def fill() -> None:
                    nonlocal listed
                    while len(pending) < self.prefetch * 2:
                        obj = next(listing, None)
                        if obj is None:
                            return
                        listed += 1
                        if eager or listed >= parse_process_min_files():  # a backlog: parse in processes
                            parser.start()
                        pending.append((obj.key, pool.submit(self._fetch, obj.key, parser)))

                try:
                    fill()
                except AwsError as exc:
                    result.error(f"listing {where}: {exc}")
                    return False
                while pending:
                    if self.out_of_time():
                        flush()
                        result.note = "time budget used up; resumes after the last file stored"
                        _cancel(pending)
                        return False
                    key, future = pending.pop(0)
                    try:
                        seen_records, events, sha = future.result()
                    except LogFileError as exc:
                        result.skipped_files += 1
                        result.error(f"s3://{bucket}/{key}: {exc}")
                        failed[key] = str(exc)[:300]
                        seen_records, events, sha = 0, [], ""
                    except RetryableAwsError as exc:
                        flush()
                        result.error(f"s3://{bucket}/{key}: {exc} (not advanced; retried next run)")
                        _cancel(pending)
                        return False
                    except AwsError as exc:
                        result.skipped_files += 1
                        result.error(f"s3://{bucket}/{key}: {exc}")
                        failed[key] = str(exc)[:300]
                        seen_records, events, sha = 0, [], ""
                    else:
                        result.pages += 1
                        result.records += seen_records
                    keys.append(key)
                    group.append((ReadFile(key, sha, len(events), delivery_time(key)), events))
                    group_events += len(events)
                    if group_events >= commit_events() or time.monotonic() - group_started > 1.0:
                        flush()
                    try:
                        fill()
                    except AwsError as exc:
                        flush()
                        result.error(f"listing {where}: {exc}")
                        _cancel(pending)
                        return False
                flush()
        finally:
            parser.close()
        return True


def _cancel(pending: list[tuple[str, Future[Any]]]) -> None:
    for _, future in pending:
        future.cancel()
    pending.clear()


def _recent_keys(keys: Iterable[str], last: str, overlap: dt.timedelta) -> list[str]:
    """Keys delivered within ``overlap`` of the newest one (the ones a rewound listing sees again)."""
    newest = delivery_time(last)
    if newest is None:
        return [last]
    floor = newest - overlap
    kept = [k for k in keys if (delivery_time(k) or newest) >= floor]
    return sorted(kept)[-2000:]
