"""The S3 pass of the CloudTrail ingest: the trail's log files (forever, backfill).

Runs when ``cloudtrail_bucket`` is set: ``<prefix>/AWSLogs/[<o-id>/]<account>/CloudTrail/<region>/``
listed with ``StartAfter`` from the stored last key (rewound a few minutes, keys already read
skipped: files delivered in the same minute can sort before the last one read); each group of files'
events and the cursor commit together; a corrupt file is recorded and skipped, a retryable failure
stops the pass before that file. GETs run on threads, parsing moves to worker processes for a backlog.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from django.conf import settings
from django.db import connections, router

from registry_app.audit.events import PreparedRow, prepare_log_rows, prepare_log_rows_gc_paused
from registry_app.audit.ingest_run import IngestRun, PassResult, cursor_row
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

__all__ = ["S3Pass", "commit_events", "s3_initial_days", "s3_overlap"]

# The ingest logs under one name, whichever of its modules writes the line.
log = logging.getLogger("registry_app.audit.ingest")

MAX_FAILED_FILES_KEPT = 500


def s3_overlap() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "AUDIT_S3_OVERLAP_SECONDS", 600)))


def s3_initial_days() -> int:
    # Without --since, the first S3 run starts this many days back (a deeper backfill is explicit).
    return int(getattr(settings, "AUDIT_S3_INITIAL_DAYS", 90))


def commit_events() -> int:
    # S3 files are committed in groups of about this many events (with the cursor after the last file).
    return int(getattr(settings, "AUDIT_COMMIT_EVENTS", 10_000))


def parse_processes() -> int:
    default = min(2, os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0
    return int(getattr(settings, "AUDIT_PARSE_PROCESSES", default))


def parse_process_min_files() -> int:
    # Worker processes only pay off for a backlog (a backfill): a 5-minute increment parses in-thread.
    return int(getattr(settings, "AUDIT_PARSE_PROCESS_MIN_FILES", 16))


class S3Pass(IngestRun):
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

    def run_s3(self, result: PassResult) -> None:
        if not self.source.cloudtrail_bucket:
            result.note = "no CloudTrail bucket configured for this source"
            return
        result.ran = True
        with _sqlite_cache(int(getattr(settings, "AUDIT_SQLITE_CACHE_MB", 256))):
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
        result.complete = complete

    def _start_after(self, root: str, state: dict[str, Any]) -> tuple[str, set[str]]:
        if self.since is not None:
            return day_start_after(root, self.since), set()
        last = state.get("last_key") or ""
        if last:
            return rewound_start_after(root, last, s3_overlap()), {*state.get("recent", []), last}
        first_day = (self.clock() - dt.timedelta(days=s3_initial_days())).date()
        return day_start_after(root, first_day), set()

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

    def _fetch(self, key: str, parser: _Parser) -> tuple[int, list[PreparedRow]]:
        body = self.reader.get_bytes(self.source.cloudtrail_bucket, key)
        return parser.parse(body, delivery_time(key) or self.clock())

    def _s3_root(self, root: str, roots_state: dict[str, Any], position: dict[str, Any], result: PassResult) -> bool:
        """Read one trail folder's new files in key order; commit files in groups with the cursor.

        GETs run on threads; parsing moves to worker processes once the backlog is large (a
        backfill), so the calling thread only links and inserts. A group is committed at
        ``AUDIT_COMMIT_EVENTS`` events or after a second, with the cursor after its last file.
        """
        state = dict(roots_state.get(root) or {})
        start_after, seen = self._start_after(root, state)
        recent: dict[str, None] = dict.fromkeys(state.get("recent", []))
        failed: dict[str, str] = dict(position.get("failed") or {})
        pending: list[tuple[str, Future[tuple[int, list[PreparedRow]]]]] = []
        listing = self._listed(root, start_after, seen, result)
        group: list[str] = []
        group_events: list[PreparedRow] = []
        group_started = time.monotonic()
        listed = 0
        parser = _Parser()

        def flush() -> None:
            nonlocal state, recent, position, group, group_events, group_started
            if not group:
                return
            last = max([state.get("last_key") or "", *group])
            for key in group:
                recent[key] = None
            kept = _recent_keys(recent, last, s3_overlap())
            recent = dict.fromkeys(kept)
            state = {"last_key": last, "recent": kept}
            roots_state[root] = state
            position = {**position, "roots": roots_state}
            if failed:
                position["failed"] = dict(list(failed.items())[-MAX_FAILED_FILES_KEPT:])
            self._commit(AuditCursor.Kind.S3, group_events, CloudTrailEvent.Via.S3, position, result)
            group, group_events, group_started = [], [], time.monotonic()

        try:
            with ThreadPoolExecutor(max_workers=self.prefetch, thread_name_prefix="ct-s3") as pool:

                def fill() -> None:
                    nonlocal listed
                    while len(pending) < self.prefetch * 2:
                        obj = next(listing, None)
                        if obj is None:
                            return
                        listed += 1
                        if listed >= parse_process_min_files():
                            parser.start()
                        pending.append((obj.key, pool.submit(self._fetch, obj.key, parser)))

                try:
                    fill()
                except AwsError as exc:
                    result.error(f"listing {root}: {exc}")
                    return False
                while pending:
                    if self.out_of_time():
                        flush()
                        result.note = "time budget used up; resumes after the last file stored"
                        _cancel(pending)
                        return False
                    key, future = pending.pop(0)
                    try:
                        seen_records, events = future.result()
                    except LogFileError as exc:
                        result.skipped_files += 1
                        result.error(f"s3://{self.source.cloudtrail_bucket}/{key}: {exc}")
                        failed[key] = str(exc)[:300]
                        seen_records, events = 0, []
                    except RetryableAwsError as exc:
                        flush()
                        result.error(
                            f"s3://{self.source.cloudtrail_bucket}/{key}: {exc} (not advanced; retried next run)"
                        )
                        _cancel(pending)
                        return False
                    except AwsError as exc:
                        result.skipped_files += 1
                        result.error(f"s3://{self.source.cloudtrail_bucket}/{key}: {exc}")
                        failed[key] = str(exc)[:300]
                        seen_records, events = 0, []
                    else:
                        result.pages += 1
                        result.records += seen_records
                    group.append(key)
                    group_events += events
                    if len(group_events) >= commit_events() or time.monotonic() - group_started > 1.0:
                        flush()
                    try:
                        fill()
                    except AwsError as exc:
                        flush()
                        result.error(f"listing {root}: {exc}")
                        _cancel(pending)
                        return False
                flush()
        finally:
            parser.close()
        return True


class _Parser:
    """Turns log-file bytes into prepared events: in this thread, or in worker processes once started.

    Worker processes (``forkserver``: no thread or connection of ours is inherited) take the JSON
    parsing and normalising off the thread that inserts, which is what lets a backfill run at
    tens of thousands of events a second on two cores. Where processes cannot be started (a daemonic
    Celery pool process, ``AUDIT_PARSE_PROCESSES = 0``), or a worker dies, parsing stays in-thread.
    """

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self._tried = False

    def start(self) -> None:
        if self._tried:
            return
        self._tried = True
        processes = parse_processes()
        if processes <= 0 or multiprocessing.current_process().daemon:
            return
        try:
            self.pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("forkserver"))
        except (OSError, ValueError, AssertionError):  # pragma: no cover - platform without forkserver
            log.warning("audit ingest: no worker processes for parsing; parsing in threads", exc_info=True)
            self.pool = None

    def parse(self, body: bytes, fallback: dt.datetime) -> tuple[int, list[PreparedRow]]:
        pool = self.pool
        if pool is not None:
            try:
                return pool.submit(prepare_log_rows_gc_paused, body, fallback).result()
            except BrokenProcessPool:
                log.warning("audit ingest: a parsing process died; parsing in threads from now on")
                self.pool = None
        return prepare_log_rows(body, fallback)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


@contextlib.contextmanager
def _sqlite_cache(megabytes: int) -> Iterator[None]:
    """A bigger SQLite page cache on this connection while a pass inserts, and WAL checkpoints that
    many megabytes apart: at a million rows the indexes' hot pages no longer fit the default cache,
    and every checkpoint re-copies (and syncs) the pages each commit touched again."""
    connection = connections[router.db_for_write(CloudTrailEvent)]
    if connection.vendor != "sqlite" or megabytes <= 0:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = cursor.fetchone()[0]
        cursor.execute("PRAGMA wal_autocheckpoint")
        checkpoint = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = -{int(megabytes) * 1024}")
        cursor.execute(f"PRAGMA wal_autocheckpoint = {int(megabytes) * 256}")  # 4 KiB pages
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint)}")


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
