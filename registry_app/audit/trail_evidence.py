"""Validation verdicts of trail log files and digests: their rows, the verdict rules, and an audit-log
entry for every failure (one per package whose events the file carried, so the failure shows on that
package's timeline). Callers hold the transaction; nothing here calls AWS.

A log file is *validated* when a digest that is itself authentic records the SHA-256 we computed
when we read the file; *failed* when the two differ, when its digest is not authentic, when the file
changed between two reads, or when the digests around its delivery time were checked and none lists
it (an injected file, or a deleted digest); otherwise it has *no digest yet*. The order in which a
file and its digest are read does not matter: whichever comes second settles the verdict.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q

from registry_app.audit.digests import HASH_ALGORITHM, ParsedDigest
from registry_app.audit.log import audit_append
from registry_app.models import AuditLogEntry, CloudTrailEvent, RegistrySource, TrailDigest, TrailLogFile

__all__ = [
    "ReadFile",
    "digest_grace",
    "flag_unlisted_files",
    "log_file_failures",
    "DigestVerdict",
    "audit_chain_broken",
    "record_digests",
    "record_read_files",
]

log = logging.getLogger("registry_app.audit.ingest")

State = TrailLogFile.State
MAX_PACKAGES_PER_FAILURE = 50
UNLISTED_BATCH = 5000
# Events of a log file happened shortly before its delivery (CloudTrail delivers within minutes).
EVENTS_BEFORE_DELIVERY = dt.timedelta(days=2)


def digest_grace() -> dt.timedelta:
    # How long after a digest's hour a file it does not list may still be listed by a backfill digest.
    return dt.timedelta(minutes=int(getattr(settings, "AUDIT_DIGEST_GRACE_MINUTES", 180)))


@dataclass(frozen=True)
class ReadFile:
    """A log file as the ingest read it: the SHA-256 of its uncompressed content, its relevant events."""

    key: str
    sha256: str
    records: int
    delivered_at: dt.datetime | None
    package_ids: frozenset[int] = frozenset()


def _rows(bucket: str, keys: list[str], source: RegistrySource, defaults: dict[str, object]) -> dict[str, TrailLogFile]:
    """The rows of these keys, created where missing (concurrent creators are harmless)."""
    TrailLogFile.objects.bulk_create(
        [TrailLogFile(source=source, bucket=bucket, key=key, **defaults) for key in keys], ignore_conflicts=True
    )
    return {row.key: row for row in TrailLogFile.objects.filter(bucket=bucket, key__in=keys).select_related("digest")}


def _verdict(row: TrailLogFile) -> tuple[str, str]:
    """(state, reason) from what the row knows; a failure already recorded stands."""
    if row.state == State.FAILED:
        return row.state, row.reason
    if row.digest is not None and row.digest.state == TrailDigest.State.FAILED:
        return State.FAILED, f"its digest {row.digest.key} is not authentic: {row.digest.reason}"
    if not row.sha256 or not row.expected_sha256:
        return State.PENDING, row.reason if row.state == State.PENDING else ""
    if row.sha256 == row.expected_sha256:
        return State.VALIDATED, ""
    where = row.digest.key if row.digest else "its digest"
    return (
        State.FAILED,
        f"the file was changed: its SHA-256 {row.sha256[:16]}… differs from {row.expected_sha256[:16]}… in {where}",
    )


def _settle(rows: Iterable[TrailLogFile], now: dt.datetime, extra: tuple[str, ...] = ()) -> list[TrailLogFile]:
    """Apply the verdicts; returns the rows that have just failed."""
    failed, changed = [], []
    for row in rows:
        state, reason = _verdict(row)
        if state == State.FAILED and row.state != State.FAILED:
            failed.append(row)
        if (state, reason) != (row.state, row.reason) or extra:
            row.state, row.reason, row.checked_at = state, reason, now
            changed.append(row)
    if changed:
        fields = ["state", "reason", "checked_at", *extra]
        TrailLogFile.objects.bulk_update(changed, fields, batch_size=500)
    return failed


def record_read_files(
    source: RegistrySource, bucket: str, files: list[ReadFile], *, now: dt.datetime
) -> tuple[dict[str, int], list[tuple[TrailLogFile, ReadFile]]]:
    """Rows for log files just read, with their verdicts: ``({key: id}, [(row, file) just failed])``.

    A file read a second time whose content changed is failed: events it now holds that it did not
    hold before would otherwise pass as validated.
    """
    by_key = {f.key: f for f in files}
    rows = _rows(bucket, list(by_key), source, {"delivered_at": None})
    for key, row in rows.items():
        read = by_key[key]
        if row.sha256 and row.sha256 != read.sha256 and row.state != State.FAILED:
            row.state = State.FAILED
            row.reason = f"the file changed after it was first read (SHA-256 {row.sha256[:16]}… → {read.sha256[:16]}…)"
            row.checked_at = now
            row.failed_now = True  # type: ignore[attr-defined]
        row.sha256 = row.sha256 or read.sha256
        row.records, row.read_at = read.records, now
        row.delivered_at = row.delivered_at or read.delivered_at
        row.source_id = row.source_id or source.pk
    failed = _settle(rows.values(), now, extra=("sha256", "records", "read_at", "delivered_at", "source"))
    failed += [row for row in rows.values() if getattr(row, "failed_now", False)]
    return {key: row.pk for key, row in rows.items()}, [(row, by_key[row.key]) for row in failed]


@dataclass(frozen=True)
class DigestVerdict:
    """What checking one digest found (``digest_ingest``), to be stored with ``record_digests``."""

    key: str
    parsed: ParsedDigest | None
    signature: str
    state: str
    chain: str = ""
    reason: str = ""
    backfill: bool = False


_DIGEST_FIELDS = (
    "source",
    "backfill",
    "signature",
    "state",
    "chain",
    "reason",
    "checked_at",
    "digest_start",
    "digest_end",
    "previous_key",
    "sha256",
    "fingerprint",
    "log_files",
)


def record_digests(
    source: RegistrySource, bucket: str, verdicts: list[DigestVerdict], *, now: dt.datetime
) -> list[TrailLogFile]:
    """Store digests' verdicts and settle the files they list; returns the files that just failed.

    A batch costs a handful of queries whatever its size (digests and files are created and updated
    in bulk); each failed digest and broken link also gets its audit entry.
    """
    if not verdicts:
        return []
    keys = [v.key for v in verdicts]
    existing = {row.key: row for row in TrailDigest.objects.filter(bucket=bucket, key__in=keys)}
    rows: list[TrailDigest] = []
    newly_failed: list[TrailDigest] = []

    def values(row: TrailDigest) -> tuple[Any, ...]:
        return tuple(getattr(row, f) for f in _DIGEST_FIELDS if f != "checked_at")

    before = {key: values(row) for key, row in existing.items()}
    for verdict in verdicts:
        row = existing.get(verdict.key) or TrailDigest(bucket=bucket, key=verdict.key)
        if verdict.state == TrailDigest.State.FAILED and (row.pk is None or row.state != verdict.state):
            newly_failed.append(row)
        row.source, row.backfill, row.signature = source, verdict.backfill, verdict.signature
        row.state, row.chain, row.reason, row.checked_at = verdict.state, verdict.chain, verdict.reason, now
        parsed = verdict.parsed
        if parsed is not None:
            row.digest_start, row.digest_end, row.previous_key = parsed.start, parsed.end, parsed.previous_key
            row.sha256, row.fingerprint, row.log_files = parsed.sha256, parsed.fingerprint, len(parsed.log_files)
        rows.append(row)
    TrailDigest.objects.bulk_create([r for r in rows if r.pk is None], ignore_conflicts=True, batch_size=500)
    # A digest checked again usually reads as before: only its check time moves (one UPDATE for all);
    # bulk_update (a CASE WHEN per field and row) only for the rows whose verdict changed.
    stored = [r for r in rows if r.pk is not None]
    changed = [r for r in stored if values(r) != before.get(r.key)]
    TrailDigest.objects.bulk_update(changed, _DIGEST_FIELDS, batch_size=500)
    same = [r.pk for r in stored if values(r) == before.get(r.key)]
    if same:
        TrailDigest.objects.filter(pk__in=same).update(checked_at=now)
    ids = dict(TrailDigest.objects.filter(bucket=bucket, key__in=keys).values_list("key", "pk"))
    for row in rows:
        row.pk = row.pk or ids.get(row.key)
    for row in newly_failed:
        _audit_digest(row)
    for row in rows:
        if row.chain == TrailDigest.Chain.BROKEN:
            audit_chain_broken(row, row.reason)
    listed: dict[str, dict[str, tuple[str, TrailDigest]]] = {}
    for verdict, row in zip(verdicts, rows, strict=True):
        if verdict.parsed is None or verdict.state == TrailDigest.State.UNCHECKED:
            continue
        for entry in verdict.parsed.log_files:
            algorithm_ok = entry.hash_algorithm == HASH_ALGORITHM
            expected = entry.hash_value if algorithm_ok else f"unsupported:{entry.hash_algorithm}"
            listed.setdefault(entry.bucket or bucket, {})[entry.key] = (expected[:64], row)
    failed: list[TrailLogFile] = []
    for file_bucket, expected in listed.items():
        files = _rows(file_bucket, list(expected), source, {})
        for file in files.values():
            file.expected_sha256, file.digest = expected[file.key]
        failed += _settle(files.values(), now, extra=("expected_sha256", "digest"))
    return failed


# --------------------------------------------------------------------------------------------- unlisted files


def flag_unlisted_files(source: RegistrySource, *, now: dt.datetime) -> list[TrailLogFile]:
    """Files read but listed by no digest although the digests around them were checked.

    A file whose delivery minute lies inside a checked (non-backfill) digest's hour, or between two
    checked digests of a chain that was not restarted, should have been listed: it fails once that
    digest is older than the grace period (late files are listed by ``_backfill`` digests). A file
    before a *starting* digest (validation switched off, logging stopped) stays "no digest".
    """
    horizon = now - digest_grace()
    pending = list(
        TrailLogFile.objects.filter(
            source=source, state=State.PENDING, digest__isnull=True, read_at__isnull=False, delivered_at__lt=horizon
        ).order_by("delivered_at")[:UNLISTED_BATCH]
    )
    if not pending:
        return []
    low, high = pending[0].delivered_at, pending[-1].delivered_at
    assert low is not None and high is not None  # noqa: S101 - the filter excludes NULL
    digests = list(
        TrailDigest.objects.filter(source=source, backfill=False, digest_end__isnull=False, digest_end__lt=horizon)
        .exclude(state=TrailDigest.State.UNCHECKED)
        .filter(digest_end__gte=low - dt.timedelta(days=2), digest_start__lte=high + dt.timedelta(days=2))
        .order_by("digest_start")
    )
    if not digests:
        return []
    changed = []
    for row in pending:
        reason = _unlisted_reason(row, digests)
        if reason:
            row.state, row.reason, row.checked_at = State.FAILED, reason, now
            changed.append(row)
    if changed:
        TrailLogFile.objects.bulk_update(changed, ["state", "reason", "checked_at"], batch_size=500)
    return changed


def _unlisted_reason(row: TrailLogFile, digests: list[TrailDigest]) -> str:
    at = row.delivered_at
    assert at is not None  # noqa: S101
    minute_end = at + dt.timedelta(minutes=1)  # the name carries the minute; delivery is within it
    for digest in digests:
        if digest.digest_start is not None and digest.digest_start <= at and minute_end <= digest.digest_end:
            return f"not listed in the digest of its delivery hour ({digest.key}): injected or replaced"
    before = [d for d in digests if d.digest_end is not None and d.digest_end <= at]
    after = [d for d in digests if d.digest_start is not None and d.digest_start >= at]
    if before and after:
        following = after[0]
        if following.chain == TrailDigest.Chain.START:
            return ""  # log file validation was off (or logging stopped) when it was delivered
        return "no digest lists this file: the digest of its delivery hour is missing"
    return ""


# --------------------------------------------------------------------------------------------- audit entries


def _audit_digest(digest: TrailDigest) -> None:
    audit_append(
        "cloudtrail.digest_failed",
        via=AuditLogEntry.Via.SYNC,
        subject=("traildigest", str(digest.pk), digest.key),
        after={"digest": f"s3://{digest.bucket}/{digest.key}", "reason": digest.reason, "chain": digest.chain},
        message=f"CloudTrail digest failed validation: {digest.reason}",
    )


def audit_chain_broken(digest: TrailDigest, reason: str) -> None:
    audit_append(
        "cloudtrail.digest_chain_broken",
        via=AuditLogEntry.Via.SYNC,
        subject=("traildigest", str(digest.pk), digest.key),
        after={"digest": f"s3://{digest.bucket}/{digest.key}", "reason": reason},
        message=f"CloudTrail digest chain broken: {reason}",
    )


def _packages_of(row: TrailLogFile) -> list[int]:
    """Packages whose events came from this file (through the event-time index: a file's events
    happened shortly before its delivery)."""
    events = CloudTrailEvent.objects.filter(trail_file_id=row.pk, package__isnull=False)
    if row.delivered_at is not None:
        events = events.filter(
            Q(event_time__gte=row.delivered_at - EVENTS_BEFORE_DELIVERY)
            & Q(event_time__lte=row.delivered_at + dt.timedelta(hours=1))
        )
    return sorted(set(events.values_list("package_id", flat=True)))


def log_file_failures(failures: Iterable[tuple[TrailLogFile, ReadFile | None]]) -> int:
    """An audit entry per failed file and package its events concern (one without a package if none)."""
    written = 0
    for row, read in failures:
        packages = sorted(read.package_ids) if read is not None and read.package_ids else _packages_of(row)
        shown = packages[:MAX_PACKAGES_PER_FAILURE] or [None]
        for package_id in shown:
            audit_append(
                "cloudtrail.validation_failed",
                via=AuditLogEntry.Via.SYNC,
                subject=("traillogfile", str(row.pk), row.key),
                package=package_id,
                after={"file": f"s3://{row.bucket}/{row.key}", "reason": row.reason, "events": row.records},
                message=f"CloudTrail log file failed validation: {row.reason}",
            )
            written += 1
        log.error("audit ingest: s3://%s/%s failed validation: %s", row.bucket, row.key, row.reason)
    return written
