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
   ``services.bypasses.attach_cloudtrail_evidence`` match outside decisions, and rebuilds the
   deployment history of the endpoints the new events touch.

Events are de-duplicated by ``eventID`` (``bulk_create(ignore_conflicts=True)`` in batches, after a
cheap check of which ids are already stored). Transactions wrap database writes only; AWS calls
happen outside them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import logging
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.db.models.functions import Lower
from django.db.models.sql import InsertQuery
from django.utils import timezone

from registry_app.audit import events as ct
from registry_app.aws.cloudtrail import LOOKUP_PAGE_SIZE, CloudTrailReader, LogObject, utc_seconds
from registry_app.aws.errors import AwsError, RetryableAwsError
from registry_app.aws.session import CallStats, SourceConfig
from registry_app.models import AuditCursor, CloudTrailEvent, ModelCard, ModelPackage, ModelPackageGroup, RegistrySource

log = logging.getLogger(__name__)

LOCK_KIND = "lock"  # an AuditCursor row per source that holds only the ingest lease
LOOKUP_RETENTION = dt.timedelta(days=90)
MAX_ERRORS_KEPT = 200
MAX_FAILED_FILES_KEPT = 500


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def lock_seconds() -> int:
    return int(_setting("AUDIT_LOCK_SECONDS", 1800))


def lookup_overlap() -> dt.timedelta:
    # LookupEvents shows an event some minutes after it happened: re-read this much of the last window.
    return dt.timedelta(seconds=int(_setting("AUDIT_LOOKUP_OVERLAP_SECONDS", 900)))


def s3_overlap() -> dt.timedelta:
    return dt.timedelta(seconds=int(_setting("AUDIT_S3_OVERLAP_SECONDS", 600)))


def s3_initial_days() -> int:
    # Without --since, the first S3 run starts this many days back (a deeper backfill is explicit).
    return int(_setting("AUDIT_S3_INITIAL_DAYS", 90))


def batch_size() -> int:
    return int(_setting("AUDIT_BATCH_SIZE", 2000))


def commit_events() -> int:
    # S3 files are committed in groups of about this many events (with the cursor after the last file).
    return int(_setting("AUDIT_COMMIT_EVENTS", 10_000))


def parse_processes() -> int:
    default = min(2, os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0
    return int(_setting("AUDIT_PARSE_PROCESSES", default))


def parse_process_min_files() -> int:
    # Worker processes only pay off for a backlog (a backfill): a 5-minute increment parses in-thread.
    return int(_setting("AUDIT_PARSE_PROCESS_MIN_FILES", 16))


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


# ---------------------------------------------------------------------------------------------- the lock


def _lock_row(source: RegistrySource) -> AuditCursor:
    row, _ = AuditCursor.objects.get_or_create(source=source, kind=LOCK_KIND, defaults={"position": {}})
    return row


def acquire_audit_lock(source: RegistrySource, *, now: float | None = None) -> str | None:
    """Conditional UPDATE: exactly one caller wins while the lease is free or expired."""
    row = _lock_row(source)
    token = uuid.uuid4().hex
    now = time.time() if now is None else now
    won = (
        AuditCursor.objects.filter(pk=row.pk)
        .filter(Q(position__until__isnull=True) | Q(position__until__lt=now))
        .update(position={"token": token, "until": now + lock_seconds()}, updated_at=timezone.now())
    )
    return token if won else None


def renew_audit_lock(source: RegistrySource, token: str) -> bool:
    """Extend the lease; False when it was lost (expired and taken by another worker)."""
    return bool(
        AuditCursor.objects.filter(source=source, kind=LOCK_KIND, position__token=token).update(
            position={"token": token, "until": time.time() + lock_seconds()}, updated_at=timezone.now()
        )
    )


def release_audit_lock(source: RegistrySource, token: str) -> None:
    AuditCursor.objects.filter(source=source, kind=LOCK_KIND, position__token=token).update(
        position={}, updated_at=timezone.now()
    )


class LockLost(Exception):
    """The lease expired and another worker took it: stop writing cursors."""


# ---------------------------------------------------------------------------------------------- storing events


@dataclass
class StoreStats:
    relevant: int = 0
    inserted: int = 0
    duplicates: int = 0
    endpoints: set[str] = field(default_factory=set)
    configs: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)


class Linker:
    """Resolves link keys against the mirror (packages, groups, cards) and dashboard users.

    The mirror is indexed once per run (lower-cased ARNs and names: ARNs and names arrive in
    whatever case the caller wrote); users are looked up per batch and cached.
    """

    def __init__(self, source: RegistrySource) -> None:
        self.source = source
        self._packages: dict[str, tuple[int, int]] | None = None
        self._versions: dict[tuple[str, int], tuple[int, int]] = {}
        self._groups: dict[str, int] = {}
        self._cards: dict[str, tuple[int, int] | None] = {}
        self._users: dict[str, int | None] = {}

    def _load(self) -> None:
        self._packages = {}
        for pk, arn, group_id, group_name, version, source_id in ModelPackage.objects.values_list(
            "pk", "arn", "group_id", "group__name", "version", "source_id"
        ):
            self._packages[arn.lower()] = (pk, group_id)
            if source_id == self.source.pk:
                self._versions[(group_name.lower(), version)] = (pk, group_id)
        self._groups = {
            name.lower(): pk
            for pk, name in ModelPackageGroup.objects.filter(source=self.source).values_list("pk", "name")
        }
        card_packages: dict[int, list[tuple[int, int]]] = {}
        for card_id, pk, group_id in ModelPackage.objects.filter(
            source=self.source, model_card__isnull=False
        ).values_list("model_card_id", "pk", "group_id"):
            card_packages.setdefault(card_id, []).append((pk, group_id))
        for pk, name in ModelCard.objects.filter(source=self.source).values_list("pk", "name"):
            linked = card_packages.get(pk) or []
            self._cards[name.lower()] = linked[0] if len(linked) == 1 else None

    def package(self, ref: ct.PackageRef) -> tuple[int | None, int | None]:
        return self._package(ref.arn, ref.group, ref.version)

    def _package(self, arn: str, group: str, version: int | None) -> tuple[int | None, int | None]:
        if self._packages is None:
            self._load()
        assert self._packages is not None
        if arn:
            found = self._packages.get(arn.lower())
            if found:
                return found
        if group and version is not None:
            found = self._versions.get((group.lower(), version))
            if found:
                return found
        return None, None

    def group(self, name: str) -> int | None:
        if self._packages is None:
            self._load()
        return self._groups.get(name.lower()) if name else None

    def card(self, name: str) -> tuple[int, int] | None:
        if self._packages is None:
            self._load()
        return self._cards.get(name.lower()) if name else None

    def prefetch_users(self, names: Iterable[str]) -> None:
        wanted = {n for n in names if n and n not in self._users}
        if not wanted:
            return
        for name in wanted:
            self._users[name] = None
        user_model = get_user_model()
        for pk, username in (
            user_model.objects.annotate(lname=Lower(user_model.USERNAME_FIELD))
            .filter(lname__in=wanted)
            .values_list("pk", user_model.USERNAME_FIELD)
        ):
            self._users[str(username).lower()] = pk

    def user(self, candidates: tuple[str, ...]) -> int | None:
        for name in candidates:
            pk = self._users.get(name)
            if pk is not None:
                return pk
        return None

    def resolve(self, event: PreparedRow) -> tuple[int | None, int | None]:
        """(package id, group id) for an event's link keys."""
        package_id = group_id = None
        if event[_P_NAME]:
            package_id, group_id = self._package(event[_P_ARN], event[_P_GROUP], event[_P_VERSION])
        if group_id is None and event[_GROUP_NAME]:
            group_id = self.group(event[_GROUP_NAME])
        if event[_RESOURCE_TYPE] == ct.CARD and package_id is None:
            found = self.card(event[_CARD_NAME])
            if found:
                package_id, group_id = found
        return package_id, group_id


# A prepared event as the writer reads it: a ``ct.PreparedEvent`` or the plain tuple of its fields
# that a parsing process sends back (a tuple unpickles at half the cost of a named tuple, on the
# thread that inserts), so the writer reads fields by position.
PreparedRow = tuple[Any, ...]
_FIELD = {name: index for index, name in enumerate(ct.PreparedEvent._fields)}
_ID, _TIME, _ERROR = _FIELD["event_id"], _FIELD["event_time"], _FIELD["error_code"]
_CANDIDATES, _RESOURCE_TYPE, _RESOURCE_NAME = _FIELD["candidates"], _FIELD["resource_type"], _FIELD["resource_name"]
_P_ARN, _P_GROUP, _P_VERSION, _P_NAME = (
    _FIELD["package_arn"],
    _FIELD["package_group"],
    _FIELD["package_version"],
    _FIELD["package_name"],
)
_GROUP_NAME, _CARD_NAME, _ENDPOINT = _FIELD["group_name"], _FIELD["card_name"], _FIELD["endpoint_name"]
_MODEL, _CONFIG, _RAW_JSON = _FIELD["model_name"], _FIELD["config_name"], _FIELD["raw_json"]

# The columns an ingest writes, in the order of ``_values`` (``id`` is the database's).
INSERT_COLUMNS = (
    "event_id",
    "source",
    "via",
    "event_time",
    "event_name",
    "event_source",
    "aws_region",
    "account_id",
    "read_only",
    "error_code",
    "actor_type",
    "actor_arn",
    "actor_name",
    "user",
    "resource_type",
    "resource_name",
    "package",
    "group",
    "endpoint_name",
    "raw",
    "ingested_at",
)
# ``_values`` copies PreparedEvent's event_time ... actor_name slice as is: the orders must agree.
if (
    ct.PreparedEvent._fields[_TIME:_CANDIDATES]
    != INSERT_COLUMNS[INSERT_COLUMNS.index("event_time") : INSERT_COLUMNS.index("user")]
):  # pragma: no cover - a guard for whoever reorders PreparedEvent or INSERT_COLUMNS
    raise ImportError("PreparedEvent's field order no longer matches INSERT_COLUMNS")
_FK_COLUMNS = {"source", "user", "package", "group"}
_RAW = INSERT_COLUMNS.index("raw")
_INSERT_SQL: dict[str, str] = {}


def _values(source_id: int | None, via: str, event: PreparedRow, linker: Linker, now: dt.datetime) -> list[Any]:
    package_id, group_id = linker.resolve(event)
    return [
        event[_ID],
        source_id,
        via,
        *event[_TIME:_CANDIDATES],  # event_time ... actor_name, in INSERT_COLUMNS order
        linker.user(event[_CANDIDATES]),
        event[_RESOURCE_TYPE],
        event[_RESOURCE_NAME],
        package_id,
        group_id,
        event[_ENDPOINT],
        event[_RAW_JSON],
        now,
    ]


def _model(values: list[Any]) -> CloudTrailEvent:
    fields = {name + ("_id" if name in _FK_COLUMNS else ""): v for name, v in zip(INSERT_COLUMNS, values, strict=True)}
    fields["raw"] = json.loads(fields["raw"])
    return CloudTrailEvent(**fields)


def _columns(connection: Any) -> str:
    quote = connection.ops.quote_name
    return ", ".join(quote(CloudTrailEvent._meta.get_field(name).column) for name in INSERT_COLUMNS)


def _insert_sql(connection: Any) -> str:
    """Django's own INSERT for one row with conflicts ignored (``INSERT OR IGNORE`` on SQLite),
    compiled once per connection alias."""
    sql = _INSERT_SQL.get(connection.alias)
    if sql is None:
        fields = [CloudTrailEvent._meta.get_field(name) for name in INSERT_COLUMNS]
        query = InsertQuery(CloudTrailEvent, on_conflict=OnConflict.IGNORE)
        template = CloudTrailEvent(event_id="", via="", event_time=timezone.now(), event_name="", raw={})
        query.insert_values(fields, [template])
        ((sql, _),) = query.get_compiler(connection=connection).as_sql()
        _INSERT_SQL[connection.alias] = sql
    return sql


def _insert_rows(rows: list[list[Any]]) -> set[str] | int:
    """Bulk insert with duplicate ``event_id`` ignored.

    The semantics of ``bulk_create(ignore_conflicts=True)``, at the speed a million-record backfill
    needs: PostgreSQL gets one ``COPY`` into a session temp table and one ``INSERT ... SELECT ... ON
    CONFLICT (event_id) DO NOTHING RETURNING event_id`` (returns the ids inserted); SQLite one
    compiled ``INSERT OR IGNORE`` run by ``executemany`` (returns how many were inserted); other
    databases ``bulk_create(ignore_conflicts=True)`` itself. ``raw`` arrives serialised once.
    """
    if not rows:
        return 0
    connection = connections[router.db_for_write(CloudTrailEvent)]
    if connection.vendor == "postgresql":
        return _copy_rows(connection, rows)
    if connection.vendor != "sqlite":
        CloudTrailEvent.objects.bulk_create([_model(r) for r in rows], batch_size=1000, ignore_conflicts=True)
        return len(rows)
    adapt_time = _sqlite_time_adapter(connection)
    time_at, ingested_at = INSERT_COLUMNS.index("event_time"), len(INSERT_COLUMNS) - 1
    now = adapt_time(rows[0][ingested_at])
    for row in rows:
        row[time_at] = adapt_time(row[time_at])
        row[ingested_at] = now
    rows.sort(key=_first)  # in event_id order: neighbouring inserts into the unique index
    with connection.cursor() as cursor:
        cursor.executemany(_insert_sql(connection), rows)
        return int(cursor.rowcount)


def _first(row: list[Any]) -> Any:
    return row[0]


def _sqlite_time_adapter(connection: Any) -> Callable[[dt.datetime], Any]:
    """``connection.ops.adapt_datetimefield_value`` with a fast path for the UTC datetimes the parser
    makes (the text Django itself would store: naive UTC, ``str(datetime)``); anything else, or a
    connection whose time zone is not UTC, goes through Django's adapter."""
    adapt = connection.ops.adapt_datetimefield_value
    if not settings.USE_TZ or connection.timezone_name != "UTC":
        return adapt
    utc = dt.UTC

    def adapter(value: dt.datetime) -> Any:
        if value.tzinfo is utc:
            return str(value.replace(tzinfo=None))
        return adapt(value)

    return adapter


# Per database alias: whether the last look-up found none of its ids stored (a backfill of new
# events). Then the next batch skips the look-up and is COPYed straight away; a conflict sends it
# the long way. Only a guess of which way is cheaper: either way stores exactly the same rows.
_COPY_CLEAN: dict[str, bool] = {}


def _copy_rows(connection: Any, rows: list[list[Any]]) -> set[str]:
    """PostgreSQL: the ids already stored are looked up (one indexed ``= ANY`` query) and the rest
    go straight into the table with ``COPY``. Should a concurrent ingest store one of them in
    between, the COPY fails on the unique index; then, inside a savepoint rolled back for that, the
    rows go through a session temp table and ``INSERT ... ON CONFLICT (event_id) DO NOTHING``.
    While look-ups find nothing stored (a backfill), the look-up is skipped and the COPY tried
    first (~4 us of server time per event less at a million rows); a conflict means the look-up.

    Both COPYs use the binary format (column types from the model's fields):
    no text escaping of the raw JSON on either side, no timestamp parsing in the server (per row,
    client 7.2 -> 2.8 us and server 10.5 -> 7.5 us in a micro-benchmark). ``rows`` have distinct ids."""
    table = connection.ops.quote_name(CloudTrailEvent._meta.db_table)
    columns = _columns(connection)
    types = _copy_types(connection)
    binary = " (FORMAT BINARY)" if types else ""
    if _COPY_CLEAN.get(connection.alias) and _copy_direct(connection, table, columns, types, rows):
        return {row[0] for row in rows}
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id FROM {table} WHERE event_id = ANY(%s)", [[row[0] for row in rows]])
        known = {row[0] for row in cursor.fetchall()}
        _COPY_CLEAN[connection.alias] = not known
        fresh = [row for row in rows if row[0] not in known]
        if not fresh:
            return set()
        if _copy_direct(connection, table, columns, types, fresh):
            return {row[0] for row in fresh}
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS audit_ingest_rows AS SELECT {columns} FROM {table} WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY audit_ingest_rows ({columns}) FROM STDIN{binary}") as copy:
            if types:
                copy.set_types(types)
            for row in fresh:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM audit_ingest_rows "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        inserted = {row[0] for row in cursor.fetchall()}
        cursor.execute("TRUNCATE audit_ingest_rows")
    return inserted


def _copy_direct(connection: Any, table: str, columns: str, types: list[str] | None, rows: list[list[Any]]) -> bool:
    """``COPY`` the rows into the table inside a savepoint; False (rolled back) on a duplicate id."""
    binary = " (FORMAT BINARY)" if types else ""
    try:
        with (
            transaction.atomic(savepoint=True),
            connection.cursor() as direct,
            connection.wrap_database_errors,  # psycopg's UniqueViolation -> Django's IntegrityError
            direct.cursor.copy(f"COPY {table} ({columns}) FROM STDIN{binary}") as copy,
        ):
            if types:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    except IntegrityError:
        return False
    return True


# Django's PostgreSQL column types → the psycopg type names a binary COPY is declared with.
_BINARY_TYPES = {
    "varchar": "varchar",
    "text": "text",
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "boolean": "bool",
    "timestamp with time zone": "timestamptz",
}
_COPY_TYPES: dict[str, list[str] | None] = {}


def _copy_types(connection: Any) -> list[str] | None:
    """The types a binary COPY of ``INSERT_COLUMNS`` declares, from the model's fields (no query);
    None, i.e. text COPY, should a column have a type not mapped here."""
    if connection.alias not in _COPY_TYPES:
        names = []
        for column in INSERT_COLUMNS:
            db_type = str(CloudTrailEvent._meta.get_field(column).db_type(connection) or "")
            names.append(_BINARY_TYPES.get(db_type.split("(", 1)[0].strip()))
        _COPY_TYPES[connection.alias] = None if None in names else names  # type: ignore[assignment]
    return _COPY_TYPES[connection.alias]


def store_records(
    source: RegistrySource | None,
    records: Iterable[dict[str, Any]],
    *,
    via: str,
    linker: Linker,
    fallback_time: dt.datetime,
    stats: StoreStats | None = None,
) -> StoreStats:
    """Filter, normalise, link and insert records (call inside the caller's transaction)."""
    _, prepared = ct.prepare_records(records, fallback_time=fallback_time)
    return store_prepared(source, prepared, via=via, linker=linker, stats=stats)


def store_prepared(
    source: RegistrySource | None,
    events: Iterable[PreparedRow],
    *,
    via: str,
    linker: Linker,
    stats: StoreStats | None = None,
) -> StoreStats:
    """Link and insert prepared events in batches (call inside the caller's transaction).

    Ids already stored are skipped before the insert (one indexed query per batch) and the insert
    itself ignores conflicts, so duplicates inside a file, across files and across LookupEvents/S3
    are stored once (and a concurrent ingest of the same events cannot fail the batch).
    """
    stats = stats or StoreStats()
    size = batch_size()
    chunk: list[PreparedRow] = []
    for event in events:
        stats.relevant += 1
        chunk.append(event)
        if len(chunk) >= size:
            _insert_chunk(source, via, chunk, linker, stats)
            chunk = []
    if chunk:
        _insert_chunk(source, via, chunk, linker, stats)
    return stats


def _insert_chunk(
    source: RegistrySource | None, via: str, chunk: list[PreparedRow], linker: Linker, stats: StoreStats
) -> None:
    unique: dict[str, PreparedRow] = {}
    for event in chunk:
        unique.setdefault(event[_ID], event)
    # Which events are new matters for the few that touch deployments (endpoint, config, model):
    # PostgreSQL's INSERT ... RETURNING says so; elsewhere those few are looked up first. The rest
    # are inserted with conflicts ignored and counted from the row count.
    fresh = list(unique.values())
    returning = connections[router.db_for_write(CloudTrailEvent)].vendor == "postgresql"
    if not returning:
        deploying = [e[_ID] for e in fresh if e[_ENDPOINT] or e[_MODEL] or e[_CONFIG]]
        if deploying:
            known = set(CloudTrailEvent.objects.filter(event_id__in=deploying).values_list("event_id", flat=True))
            fresh = [e for e in fresh if e[_ID] not in known]
    linker.prefetch_users(name for event in fresh for name in event[_CANDIDATES])
    now = timezone.now()
    source_id = source.pk if source else None
    outcome = _insert_rows([_values(source_id, via, event, linker, now) for event in fresh])
    if isinstance(outcome, set):
        fresh = [event for event in fresh if event[_ID] in outcome]
        inserted = len(outcome)
    else:
        inserted = outcome
    stats.inserted += inserted
    stats.duplicates += len(chunk) - inserted
    for event in fresh:
        if event[_ERROR]:
            continue
        if event[_ENDPOINT]:
            stats.endpoints.add(event[_ENDPOINT])
        if event[_CONFIG] and event[_RESOURCE_TYPE] == ct.ENDPOINT_CONFIG:
            stats.configs.add(event[_CONFIG])
        if event[_MODEL]:
            stats.models.add(event[_MODEL])


def relink_events(source: RegistrySource, *, since: dt.datetime | None = None, limit: int = 5000) -> int:
    """Link events stored before the mirror knew their package or group. Returns rows updated.

    With ``since``, only packages and groups the mirror first saw since then are considered (an
    event can only be unlinked if its package was unknown when it was stored), each by an indexed
    ``resource_name`` match; without it, the unlinked events themselves are scanned (first run).
    """
    linker = Linker(source)
    updated = 0
    if since is not None:
        for arn, group, version in ModelPackage.objects.filter(first_seen_at__gte=since).values_list(
            "arn", "group__name", "version"
        )[:limit]:
            package_id, group_id = linker.package(ct.package_ref(arn))
            names = {arn, arn.lower(), f"{group}/{version}"}
            updated += CloudTrailEvent.objects.filter(
                source=source, resource_name__in=names, package__isnull=True, resource_type=ct.PACKAGE
            ).update(package_id=package_id, group_id=group_id)
        for name, group_id in ModelPackageGroup.objects.filter(source=source, first_seen_at__gte=since).values_list(
            "name", "pk"
        )[:limit]:
            updated += CloudTrailEvent.objects.filter(
                source=source, resource_name__in={name, name.lower()}, group__isnull=True, resource_type=ct.GROUP
            ).update(group_id=group_id)
        return updated
    candidates = (
        CloudTrailEvent.objects.filter(source=source, package__isnull=True, resource_type=ct.PACKAGE)
        .values_list("resource_name", flat=True)
        .distinct()[:limit]
    )
    for name in list(candidates):
        package_id, group_id = linker.package(ct.package_ref(name))
        if package_id is not None:
            updated += CloudTrailEvent.objects.filter(
                source=source, package__isnull=True, resource_type=ct.PACKAGE, resource_name=name
            ).update(package_id=package_id, group_id=group_id)
    group_names = (
        CloudTrailEvent.objects.filter(source=source, group__isnull=True, resource_type=ct.GROUP)
        .values_list("resource_name", flat=True)
        .distinct()[:limit]
    )
    for name in list(group_names):
        group_id = linker.group(name)
        if group_id is not None:
            updated += CloudTrailEvent.objects.filter(
                source=source, group__isnull=True, resource_type=ct.GROUP, resource_name=name
            ).update(group_id=group_id)
    return updated


def _relink(source: RegistrySource) -> int:
    """Relink since the previous run's relink (kept in the LookupEvents cursor; an hour of slack)."""
    cursor = _cursor(source, AuditCursor.Kind.LOOKUP)
    stamp = (cursor.position or {}).get("relinked_at")
    started = timezone.now()
    since = _parse(stamp) - dt.timedelta(hours=1) if stamp else None
    updated = relink_events(source, since=since)
    position = dict(AuditCursor.objects.get(pk=cursor.pk).position or {})
    position["relinked_at"] = _iso(started)
    AuditCursor.objects.filter(pk=cursor.pk).update(position=position, updated_at=timezone.now())
    return updated


# ---------------------------------------------------------------------------------------------- cursors


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> dt.datetime:
    parsed = ct.parse_event_time(value)
    if parsed is None:
        raise ValueError(f"bad cursor time {value!r}")
    return parsed


def _cursor(source: RegistrySource, kind: str) -> AuditCursor:
    row, _ = AuditCursor.objects.get_or_create(source=source, kind=kind, defaults={"position": {}})
    return row


def cursor_positions(source: RegistrySource) -> dict[str, dict[str, Any]]:
    """The stored positions by kind (for status pages and tests)."""
    return {c.kind: dict(c.position) for c in AuditCursor.objects.filter(source=source).exclude(kind=LOCK_KIND)}


# ---------------------------------------------------------------------------------------------- the ingest


class AuditIngest:
    """One run for one source. Create through ``ingest_source``."""

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
    ) -> None:
        self.source = source
        self.reader = reader
        self.lock_token = lock_token
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
    ) -> None:
        """Store events and move the cursor in one transaction (the lease is checked in it too)."""
        stats = StoreStats()
        with transaction.atomic():
            _relaxed_commit()
            if not renew_audit_lock(self.source, self.lock_token):
                raise LockLost(f"audit lock of {self.source.name} was lost")
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

    # -- LookupEvents ----------------------------------------------------------------------
    def lookup_passes(self) -> list[tuple[str, str, str]]:
        passes = [("sagemaker", "EventSource", ct.SAGEMAKER)]
        if _setting("AUDIT_LOOKUP_ASSUME_ROLE", False):
            passes.append(("assume_role", "EventName", ct.ASSUME_ROLE))
        return passes

    def run_lookup(self, result: PassResult, *, respect_backoff: bool = False) -> None:
        cursor = _cursor(self.source, AuditCursor.Kind.LOOKUP)
        position: dict[str, Any] = dict(cursor.position or {})
        passes: dict[str, Any] = dict(position.get("passes") or {})
        retry_after = position.get("retry_after")
        if respect_backoff and retry_after and _parse(retry_after) > self.clock():
            result.note = f"LookupEvents failed before; next try after {retry_after}"
            return
        result.ran = True
        complete = True
        for name, key, value in self.lookup_passes():
            state = dict(passes.get(name) or {})
            ok = self._lookup_window(name, key, value, state, passes, position, result)
            complete = complete and ok
            if not ok:
                break
        result.complete = complete

    def _save_lookup(self, passes: dict[str, Any], position: dict[str, Any]) -> dict[str, Any]:
        position = {**position, "passes": passes}
        return position

    def _lookup_window(
        self,
        name: str,
        key: str,
        value: str,
        state: dict[str, Any],
        passes: dict[str, Any],
        position: dict[str, Any],
        result: PassResult,
    ) -> bool:
        now = utc_seconds(self.clock())
        horizon = now - LOOKUP_RETENTION
        window = state.get("window")
        if self.since is not None or not window:
            if self.since is not None:
                start = dt.datetime.combine(self.since, dt.time.min, tzinfo=dt.UTC)
            elif state.get("done_until"):
                done = _parse(state["done_until"])
                if done < horizon:
                    result.error(
                        f"LookupEvents: the previous run ended at {state['done_until']}, more than 90 days ago: "
                        "events between then and the 90-day horizon are only in the trail's S3 files"
                    )
                start = done - lookup_overlap()
            else:
                start = horizon
            start = max(utc_seconds(start), horizon)
            if start >= now:
                return True
            window = {"start": _iso(start), "end": _iso(now), "token": None, "key": key, "value": value}
        base = {
            "LookupAttributes": [{"AttributeKey": window["key"], "AttributeValue": window["value"]}],
            "StartTime": _parse(window["start"]),
            "EndTime": _parse(window["end"]),
            "MaxResults": LOOKUP_PAGE_SIZE,
        }
        token: str | None = window.get("token")
        restarted = False
        while True:
            if self.out_of_time():
                result.note = "time budget used up; resumes from the stored NextToken"
                return False
            params = dict(base)
            if token:
                params["NextToken"] = token
            try:
                page = self.reader.lookup_page(params)
            except RetryableAwsError as exc:
                result.throttled += 1
                result.error(f"LookupEvents: {exc} (page kept; the next run resends it)")
                return False
            except AwsError as exc:
                if token and exc.code == "InvalidNextTokenException" and not restarted:
                    # Tokens expire: walk the same window again from its newest page (dedupe absorbs it).
                    restarted, token = True, None
                    continue
                result.error(f"LookupEvents: {exc}")
                failures = int(position.get("failures") or 0) + 1
                position["failures"] = failures
                backoff = min(6 * 3600, 300 * 2 ** min(failures - 1, 7))
                position["retry_after"] = _iso(self.clock() + dt.timedelta(seconds=backoff))
                position["last_error"] = str(exc)[:500]
                AuditCursor.objects.filter(source=self.source, kind=AuditCursor.Kind.LOOKUP).update(
                    position=self._save_lookup(passes, position), updated_at=timezone.now()
                )
                return False
            result.pages += 1
            result.records += len(page.records)
            result.throttled += page.throttled
            token = page.next_token
            if token:
                state = {**state, "window": {**window, "token": token}}
            else:
                state = {"done_until": window["end"], "window": None}
            passes[name] = state
            position.pop("failures", None)
            position.pop("retry_after", None)
            position.pop("last_error", None)
            _, prepared = ct.prepare_records(page.records, fallback_time=self.clock())
            self._commit(
                AuditCursor.Kind.LOOKUP,
                prepared,
                CloudTrailEvent.Via.LOOKUP,
                self._save_lookup(passes, position),
                result,
            )
            if not token:
                return True

    # -- S3 --------------------------------------------------------------------------------
    def roots(self) -> list[str]:
        bucket, prefix = self.source.cloudtrail_bucket, self.source.cloudtrail_prefix
        account, region = self.source.account_id, self.source.region
        base = ct.awslogs_prefix(prefix)
        out = []
        for entry in self.reader.list_prefixes(bucket, base):
            name = entry[len(base) :].strip("/")
            if name.startswith("o-"):
                for sub in self.reader.list_prefixes(bucket, entry):
                    member = sub[len(entry) :].strip("/")
                    if member.isdigit() and (not account or member == account):
                        out.append(ct.trail_root(prefix, member, region, org_id=name))
            elif name.isdigit() and (not account or name == account):
                out.append(ct.trail_root(prefix, name, region))
        return out

    def run_s3(self, result: PassResult) -> None:
        if not self.source.cloudtrail_bucket:
            result.note = "no CloudTrail bucket configured for this source"
            return
        result.ran = True
        with _sqlite_cache(int(_setting("AUDIT_SQLITE_CACHE_MB", 256))):
            self._run_s3(result)

    def _run_s3(self, result: PassResult) -> None:
        cursor = _cursor(self.source, AuditCursor.Kind.S3)
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
            return ct.day_start_after(root, self.since), set()
        last = state.get("last_key") or ""
        if last:
            return ct.rewound_start_after(root, last, s3_overlap()), {*state.get("recent", []), last}
        first_day = (self.clock() - dt.timedelta(days=s3_initial_days())).date()
        return ct.day_start_after(root, first_day), set()

    def _listed(self, root: str, start_after: str, seen: set[str], result: PassResult) -> Iterator[LogObject]:
        bucket = self.source.cloudtrail_bucket
        for page in self.reader.iter_objects(bucket, root, start_after=start_after):
            for obj in page:
                if obj.key in seen:
                    continue
                if not ct.is_log_key(obj.key):
                    result.skipped_files += 1
                    continue
                yield obj

    def _fetch(self, key: str, parser: _Parser) -> tuple[int, list[PreparedRow]]:
        body = self.reader.get_bytes(self.source.cloudtrail_bucket, key)
        return parser.parse(body, ct.delivery_time(key) or self.clock())

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
                    except ct.LogFileError as exc:
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
                return pool.submit(_prepare_rows, body, fallback).result()
            except BrokenProcessPool:
                log.warning("audit ingest: a parsing process died; parsing in threads from now on")
                self.pool = None
        return ct.prepare_log_rows(body, fallback)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def _relaxed_commit() -> None:
    """PostgreSQL: this transaction's COMMIT does not wait for its WAL flush (``synchronous_commit``
    off, for this transaction only). A server crash can lose the last few commits, never corrupt
    anything; each commit carries its events *and* the cursor, so a lost one is simply read again."""
    connection = connections[router.db_for_write(CloudTrailEvent)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def _prepare_rows(body: bytes, fallback: dt.datetime) -> tuple[int, list[PreparedRow]]:
    """``ct.prepare_log_rows`` in a parsing process (events as plain tuples), with the cyclic garbage
    collector paused meanwhile: a file's records are acyclic JSON trees that reference counting
    frees, yet their tens of thousands of containers would set off collection after collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ct.prepare_log_rows(body, fallback)
    finally:
        if enabled:
            gc.enable()


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
    newest = ct.delivery_time(last)
    if newest is None:
        return [last]
    floor = newest - overlap
    kept = [k for k in keys if (ct.delivery_time(k) or newest) >= floor]
    return sorted(kept)[-2000:]


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
        _analyze_after(result.inserted)
        result.relinked = _relink(source)
        result.evidence_attached = _attach_evidence()
        if rebuild:
            from registry_app.audit.deployment_chain import rebuild_after_ingest

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
    return int(_setting("AUDIT_ANALYZE_AFTER_ROWS", 20_000))


def _analyze_after(inserted: int) -> None:
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
        from registry_app.audit.outside_decisions import attach_cloudtrail_evidence
    except ImportError:  # pragma: no cover - that service ships separately
        return 0
    try:
        return int(attach_cloudtrail_evidence())
    except Exception:  # noqa: BLE001 - evidence matching must never fail the ingest
        log.exception("attach_cloudtrail_evidence failed")
        return 0


def ingest_all(*, since: dt.date | None = None, **kwargs: Any) -> list[IngestResult]:
    return [ingest_source(s, since=since, **kwargs) for s in RegistrySource.objects.filter(enabled=True)]
