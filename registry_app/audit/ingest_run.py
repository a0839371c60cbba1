"""One ingest run's state: the per-source lease (the audit lock), the stored cursors, the counts of a
pass, and the commit that stores a batch of events *with* its cursor (``IngestRun._commit``). The
passes (``ingest_lookup.LookupPass``, ``ingest_s3.S3Pass``) build on ``IngestRun``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from registry_app.audit.events import PreparedRow, parse_event_time
from registry_app.audit.ingest_linker import Linker
from registry_app.audit.ingest_writer import StoreStats, store_from_files, store_prepared
from registry_app.audit.trail_evidence import ReadFile, log_file_failures, record_read_files
from registry_app.aws.cloudtrail import CloudTrailReader
from registry_app.models import AuditCursor, CloudTrailEvent, RegistrySource

__all__ = [
    "BACKFILL_LOCK_KIND",
    "LOCK_KIND",
    "IngestRun",
    "LockLost",
    "PassResult",
    "acquire_audit_lock",
    "cursor_positions",
    "cursor_row",
    "cursor_time",
    "lock_seconds",
    "parse_cursor_time",
    "release_audit_lock",
    "renew_audit_lock",
]

# The ingest logs under one name, whichever of its modules writes the line.
log = logging.getLogger("registry_app.audit.ingest")

LOCK_KIND = "lock"  # an AuditCursor row per source that holds only the ingest lease
BACKFILL_LOCK_KIND = "backfill_lock"  # the history backfill's own lease
MAX_ERRORS_KEPT = 200


def lock_seconds() -> int:
    return int(getattr(settings, "AUDIT_LOCK_SECONDS", 1800))


# ---------------------------------------------------------------------------------------------- results


@dataclass
class PassResult:
    """Counts of one pass (LookupEvents or S3) of one run."""

    ran: bool = False
    complete: bool = False
    pages: int = 0  # LookupEvents calls answered / S3 files read
    records: int = 0  # records seen
    relevant: int = 0
    inserted: int = 0
    duplicates: int = 0
    throttled: int = 0
    skipped_files: int = 0
    errors: list[str] = field(default_factory=list)
    note: str = ""

    def error(self, message: str) -> None:
        log.warning("audit ingest: %s", message)
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message[:1000])


# ---------------------------------------------------------------------------------------------- the lock


def _lock_row(source: RegistrySource, kind: str = LOCK_KIND) -> AuditCursor:
    row, _ = AuditCursor.objects.get_or_create(source=source, kind=kind, defaults={"position": {}})
    return row


def acquire_audit_lock(source: RegistrySource, *, now: float | None = None, kind: str = LOCK_KIND) -> str | None:
    """Conditional UPDATE: exactly one caller wins while the lease is free or expired.

    ``kind``: the forward ingest's lease (``lock``) or the backfill's (``backfill_lock``), which are
    separate so the history backfill never holds up the 5-minute ingest."""
    row = _lock_row(source, kind)
    token = uuid.uuid4().hex
    now = time.time() if now is None else now
    won = (
        AuditCursor.objects.filter(pk=row.pk)
        .filter(Q(position__until__isnull=True) | Q(position__until__lt=now))
        .update(position={"token": token, "until": now + lock_seconds()}, updated_at=timezone.now())
    )
    return token if won else None


def renew_audit_lock(source: RegistrySource, token: str, *, kind: str = LOCK_KIND) -> bool:
    """Extend the lease; False when it was lost (expired and taken by another worker)."""
    return bool(
        AuditCursor.objects.filter(source=source, kind=kind, position__token=token).update(
            position={"token": token, "until": time.time() + lock_seconds()}, updated_at=timezone.now()
        )
    )


def release_audit_lock(source: RegistrySource, token: str, *, kind: str = LOCK_KIND) -> None:
    AuditCursor.objects.filter(source=source, kind=kind, position__token=token).update(
        position={}, updated_at=timezone.now()
    )


class LockLost(Exception):
    """The lease expired and another worker took it: stop writing cursors."""


# ---------------------------------------------------------------------------------------------- cursors


def cursor_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_cursor_time(value: str) -> dt.datetime:
    parsed = parse_event_time(value)
    if parsed is None:
        raise ValueError(f"bad cursor time {value!r}")
    return parsed


def cursor_row(source: RegistrySource, kind: str) -> AuditCursor:
    row, _ = AuditCursor.objects.get_or_create(source=source, kind=kind, defaults={"position": {}})
    return row


def cursor_positions(source: RegistrySource) -> dict[str, dict[str, Any]]:
    """The stored positions by kind (for status pages and tests)."""
    return {
        c.kind: dict(c.position)
        for c in AuditCursor.objects.filter(source=source).exclude(kind__in=[LOCK_KIND, BACKFILL_LOCK_KIND])
    }


def _relaxed_commit() -> None:
    """PostgreSQL: this transaction's COMMIT does not wait for its WAL flush (``synchronous_commit``
    off, for this transaction only). A server crash can lose the last few commits, never corrupt
    anything; each commit carries its events *and* the cursor, so a lost one is simply read again."""
    connection = connections[router.db_for_write(CloudTrailEvent)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


# ---------------------------------------------------------------------------------------------- the run


class IngestRun:
    """One run for one source: what both passes share. Create through ``ingest.ingest_source``."""

    def __init__(
        self,
        source: RegistrySource,
        reader: CloudTrailReader,
        *,
        lock_token: str,
        since: dt.date | None = None,
        max_seconds: float | None = None,
        clock: Callable[[], dt.datetime] = timezone.now,
        prefetch: int = 4,
        lock_kind: str = LOCK_KIND,
    ) -> None:
        self.source = source
        self.reader = reader
        self.lock_token = lock_token
        self.lock_kind = lock_kind
        self.since = since
        self.deadline = time.monotonic() + max_seconds if max_seconds else None
        self.clock = clock
        self.prefetch = prefetch
        self.linker = Linker(source)
        self.touched = StoreStats()

    # -- helpers ---------------------------------------------------------------------------
    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _commit(
        self,
        kind: str,
        events: Iterable[PreparedRow],
        via: str,
        position: dict[str, Any],
        result: PassResult,
        *,
        files: list[tuple[ReadFile, list[PreparedRow]]] | None = None,
    ) -> None:
        """Store events and move the cursor in one transaction (the lease is checked in it too).

        ``files`` (trail files read with digest validation on): their ``TrailLogFile`` rows and
        verdicts are written in the same transaction, each event pointing to its file.
        """
        stats = StoreStats()
        with transaction.atomic():
            _relaxed_commit()
            if not renew_audit_lock(self.source, self.lock_token, kind=self.lock_kind):
                raise LockLost(f"audit lock of {self.source.name} was lost")
            if files:
                bucket = self.source.cloudtrail_bucket
                ids, failed = record_read_files(self.source, bucket, [f for f, _ in files], now=self.clock())
                pairs = [(ids.get(read.key), events) for read, events in files]
                store_from_files(self.source, pairs, via=via, linker=self.linker, stats=stats)
                log_file_failures(failed)
            else:
                store_prepared(self.source, events, via=via, linker=self.linker, stats=stats)
            AuditCursor.objects.filter(source=self.source, kind=kind).update(
                position=position, updated_at=timezone.now()
            )
        result.relevant += stats.relevant
        result.inserted += stats.inserted
        result.duplicates += stats.duplicates
        self.touched.inserted += stats.inserted
        self.touched.endpoints |= stats.endpoints
        self.touched.configs |= stats.configs
        self.touched.models |= stats.models
