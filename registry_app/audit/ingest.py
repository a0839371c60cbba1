"""CloudTrail ingest: LookupEvents (90 days, no setup) and the trail's S3 files (forever, backfill).

Entry point: ``ingest_source(source, *, since=None) -> IngestResult`` (the ``sync_audit`` command
and the Celery beat task both call it). Per source it:

1. takes the audit lock (a conditional UPDATE on an ``AuditCursor`` row of kind ``lock``; separate
   from the registry-sync lock so a long backfill never holds up the minute-by-minute registry sync);
2. LookupEvents pass (``EventSource=sagemaker.amazonaws.com``, 50 per page, names filtered here):
   the window ``[previous end - overlap, now]`` (the first run: the last 90 days) is walked page
   by page; after each page its events *and* the cursor (window start/end + ``NextToken``) commit
   in one transaction, so a crash resumes with the same token and the exact same parameters.
   Throttles are waited out by the adapter; a page that still fails is simply not advanced past;
3. S3 pass when ``cloudtrail_bucket`` is set: ``<prefix>/AWSLogs/[<o-id>/]<account>/CloudTrail/<region>/``
   listed with ``StartAfter`` from the stored last key (rewound a few minutes, keys already read
   skipped: files delivered in the same minute can sort before the last one read); each file's
   events and the cursor commit together; a corrupt file is recorded and skipped, a retryable
   failure stops the pass before that file;
4. re-links events stored before the mirror knew their package/group, lets
   ``outside_decisions.attach_cloudtrail_evidence`` match outside decisions, and rebuilds the
   deployment history of the endpoints the new events touch.

Events are de-duplicated by ``eventID`` (``bulk_create(ignore_conflicts=True)`` in batches, after a
cheap check of which ids are already stored). Transactions wrap database writes only; AWS calls
happen outside them.

The pieces: ``ingest_run`` (lease, cursors, the commit), ``ingest_lookup`` (step 2), ``ingest_s3``
(step 3), ``ingest_writer`` (the bulk insert) and ``ingest_linker`` (links to the mirror, step 4).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connections, router
from django.utils import timezone

from registry_app.audit.deployments import rebuild_after_ingest
from registry_app.audit.ingest_linker import relink_events
from registry_app.audit.ingest_lookup import LookupPass
from registry_app.audit.ingest_run import (
    LockLost,
    PassResult,
    acquire_audit_lock,
    cursor_row,
    cursor_time,
    parse_cursor_time,
    release_audit_lock,
)
from registry_app.audit.ingest_s3 import S3Pass
from registry_app.audit.outside_decisions import attach_cloudtrail_evidence
from registry_app.aws.cloudtrail import CloudTrailReader
from registry_app.aws.errors import AwsError
from registry_app.aws.session import CallStats, SourceConfig
from registry_app.models import AuditCursor, CloudTrailEvent, RegistrySource

__all__ = ["AuditIngest", "IngestResult", "analyze_after_rows", "analyze_events_table", "ingest_all", "ingest_source"]

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    source: str
    skipped: bool = False
    lookup: PassResult = field(default_factory=PassResult)
    s3: PassResult = field(default_factory=PassResult)
    relinked: int = 0
    evidence_attached: int = 0
    deployments_rebuilt: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    aws_calls: dict[str, int] = field(default_factory=dict)

    @property
    def inserted(self) -> int:
        return self.lookup.inserted + self.s3.inserted

    @property
    def errors(self) -> list[str]:
        return self.lookup.errors + self.s3.errors

    def lines(self) -> list[str]:
        if self.skipped:
            return [f"{self.source}: skipped (another audit ingest of this source holds the lock)"]
        out = [f"{self.source}: {self.inserted} new CloudTrail events in {self.duration_s:.1f}s"]
        for label, result in (("lookup", self.lookup), ("s3", self.s3)):
            if not result.ran:
                out.append(f"  {label}: not run{f' ({result.note})' if result.note else ''}")
                continue
            unit = "pages" if label == "lookup" else "files"
            out.append(
                f"  {label}: {result.pages} {unit}, {result.records} records, {result.relevant} relevant, "
                f"{result.inserted} new, {result.duplicates} already stored"
                + (f", {result.throttled} throttled" if result.throttled else "")
                + (f", {result.skipped_files} files skipped" if result.skipped_files else "")
                + ("" if result.complete else " (incomplete: resumes next run)")
                + (f" — {result.note}" if result.note else "")
            )
        out.append(f"  relinked: {self.relinked}, outside decisions evidenced: {self.evidence_attached}")
        if self.deployments_rebuilt:
            out.append(f"  deployments rebuilt: {', '.join(sorted(self.deployments_rebuilt))}")
        return out


def _relink(source: RegistrySource) -> int:
    """Relink since the previous run's relink (kept in the LookupEvents cursor; an hour of slack)."""
    cursor = cursor_row(source, AuditCursor.Kind.LOOKUP)
    stamp = (cursor.position or {}).get("relinked_at")
    started = timezone.now()
    since = parse_cursor_time(stamp) - dt.timedelta(hours=1) if stamp else None
    updated = relink_events(source, since=since)
    position = dict(AuditCursor.objects.get(pk=cursor.pk).position or {})
    position["relinked_at"] = cursor_time(started)
    AuditCursor.objects.filter(pk=cursor.pk).update(position=position, updated_at=timezone.now())
    return updated


# ---------------------------------------------------------------------------------------------- the ingest


class AuditIngest(LookupPass, S3Pass):
    """One run for one source: LookupEvents, then S3. Create through ``ingest_source``."""


# ---------------------------------------------------------------------------------------------- entry points


def ingest_source(
    source: RegistrySource,
    *,
    since: dt.date | None = None,
    lookup: bool = True,
    s3: bool = True,
    reader: CloudTrailReader | None = None,
    max_seconds: float | None = None,
    respect_backoff: bool = False,
    rebuild: bool = True,
    clock: Callable[[], dt.datetime] = timezone.now,
) -> IngestResult:
    """Ingest one source's CloudTrail events now (LookupEvents, then the trail's S3 files).

    Takes the per-source audit lock (returns ``skipped`` when another run holds it). Each page or
    file commits with its cursor; AWS calls happen outside transactions. After the passes: re-link,
    outside-decision evidence, and deployment rebuilds for the endpoints touched. ``since`` (a date)
    re-reads from that day (LookupEvents: at most 90 days back). ``respect_backoff`` (the beat task)
    skips LookupEvents while an earlier non-retryable failure is backing off.
    """
    result = IngestResult(source=source.name)
    token = acquire_audit_lock(source)
    if token is None:
        result.skipped = True
        return result
    started = time.perf_counter()
    stats = reader.stats if reader is not None else CallStats()
    try:
        if reader is None:
            reader = CloudTrailReader(SourceConfig.from_source(source), stats, account=source.account_id)
        if not source.account_id and s3 and source.cloudtrail_bucket:
            _discover_account(source, reader, result)
        run = AuditIngest(source, reader, lock_token=token, since=since, max_seconds=max_seconds, clock=clock)
        try:
            if lookup:
                run.run_lookup(result.lookup, respect_backoff=respect_backoff)
            if s3:
                run.run_s3(result.s3)
        except LockLost as exc:
            result.s3.error(str(exc))
            return result
        analyze_events_table(result.inserted)
        result.relinked = _relink(source)
        result.evidence_attached = _attach_evidence()
        if rebuild:
            result.deployments_rebuilt = rebuild_after_ingest(
                source, endpoints=run.touched.endpoints, configs=run.touched.configs, models=run.touched.models
            )
    finally:
        release_audit_lock(source, token)
        result.duration_s = round(time.perf_counter() - started, 3)
        result.aws_calls = stats.as_dict()
    return result


def analyze_after_rows() -> int:
    # Refresh the planner's statistics once a run has inserted this many events (a backfill).
    return int(getattr(settings, "AUDIT_ANALYZE_AFTER_ROWS", 20_000))


def analyze_events_table(inserted: int) -> None:
    """Refresh the query planner's statistics on the event table after a large ingest.

    Without them SQLite assumes every index narrows an equality to a few rows and cannot tell that
    ``event_name = ...`` matches a tenth of the table while ``actor_name = ...`` or ``package_id =
    ...`` match a handful; PostgreSQL's autovacuum gets there eventually. A full pass (no
    ``analysis_limit``: sampling badly underestimates low-cardinality columns such as event_name)
    takes about two seconds at a million rows.
    """
    if inserted < max(1, analyze_after_rows()):
        return
    connection = connections[router.db_for_write(CloudTrailEvent)]
    table = connection.ops.quote_name(CloudTrailEvent._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA analysis_limit = 0")
            cursor.execute(f"ANALYZE {table}")
        elif connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {table}")


def _discover_account(source: RegistrySource, reader: CloudTrailReader, result: IngestResult) -> None:
    try:
        account = reader.account_id()
    except AwsError as exc:
        result.s3.error(f"GetCallerIdentity: {exc} (reading every account's folder)")
        return
    RegistrySource.objects.filter(pk=source.pk, account_id="").update(account_id=account)
    source.account_id = account


def _attach_evidence() -> int:
    """Let the outside-decision service match its flagged changes against the new events."""
    try:
        return int(attach_cloudtrail_evidence())
    except Exception:  # noqa: BLE001 - evidence matching must never fail the ingest
        log.exception("attach_cloudtrail_evidence failed")
        return 0


def ingest_all(*, since: dt.date | None = None, **kwargs: Any) -> list[IngestResult]:
    return [ingest_source(s, since=since, **kwargs) for s in RegistrySource.objects.filter(enabled=True)]
