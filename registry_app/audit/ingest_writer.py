"""Storing CloudTrail events: prepared events → ``CloudTrailEvent`` rows, in batches, duplicates ignored.

``store_prepared`` links each batch (``ingest_linker.Linker``) and inserts it the fastest way the
database allows: PostgreSQL a binary ``COPY`` (with a look-up of the ids already stored, and a temp
table + ``INSERT ... ON CONFLICT DO NOTHING`` when a concurrent ingest got there first), SQLite one
compiled ``INSERT OR IGNORE`` run by ``executemany``, anything else ``bulk_create(ignore_conflicts=True)``.
Callers hold the transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery
from django.utils import timezone

from registry_app.audit.event_keys import ENDPOINT_CONFIG
from registry_app.audit.events import PreparedEvent, PreparedRow, prepare_records
from registry_app.audit.ingest_linker import Linker
from registry_app.models import CloudTrailEvent, RegistrySource

__all__ = ["INSERT_COLUMNS", "StoreStats", "batch_size", "store_from_files", "store_prepared", "store_records"]


def batch_size() -> int:
    return int(getattr(settings, "AUDIT_BATCH_SIZE", 2000))


@dataclass
class StoreStats:
    relevant: int = 0
    inserted: int = 0
    duplicates: int = 0
    endpoints: set[str] = field(default_factory=set)
    configs: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)


# The fields of a prepared event by position (see ``events.PreparedRow``).
_FIELD = {name: index for index, name in enumerate(PreparedEvent._fields)}
_ID, _TIME, _ERROR = _FIELD["event_id"], _FIELD["event_time"], _FIELD["error_code"]
_CANDIDATES, _RESOURCE_TYPE, _RESOURCE_NAME = _FIELD["candidates"], _FIELD["resource_type"], _FIELD["resource_name"]
_ENDPOINT, _MODEL, _CONFIG, _RAW_JSON = (
    _FIELD["endpoint_name"],
    _FIELD["model_name"],
    _FIELD["config_name"],
    _FIELD["raw_json"],
)

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
    "trail_file",
    "raw",
    "ingested_at",
)
# ``_values`` copies PreparedEvent's event_time ... actor_name slice as is: the orders must agree.
if (
    PreparedEvent._fields[_TIME:_CANDIDATES]
    != INSERT_COLUMNS[INSERT_COLUMNS.index("event_time") : INSERT_COLUMNS.index("user")]
):  # pragma: no cover - a guard for whoever reorders PreparedEvent or INSERT_COLUMNS
    raise ImportError("PreparedEvent's field order no longer matches INSERT_COLUMNS")
_FK_COLUMNS = {"source", "user", "package", "group", "trail_file"}
_RAW = INSERT_COLUMNS.index("raw")
_INSERT_SQL: dict[str, str] = {}


def _values(
    source_id: int | None, via: str, event: PreparedRow, linker: Linker, now: dt.datetime, file_id: int | None = None
) -> list[Any]:
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
        file_id,
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
    _, prepared = prepare_records(records, fallback_time=fallback_time)
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
    return store_from_files(source, [(None, events)], via=via, linker=linker, stats=stats)


def store_from_files(
    source: RegistrySource | None,
    files: Iterable[tuple[int | None, Iterable[PreparedRow]]],
    *,
    via: str,
    linker: Linker,
    stats: StoreStats | None = None,
) -> StoreStats:
    """``store_prepared`` for events read from trail files: ``(TrailLogFile id, events)`` per file.

    Each new event points to its file (``trail_file``). An event already stored without a file (by
    LookupEvents, which runs ahead of the trail's delivery) is given this file, so it carries the
    file's validation state too; batches are still filled across files.
    """
    stats = stats or StoreStats()
    size = batch_size()
    chunk: list[tuple[PreparedRow, int | None]] = []
    for file_id, events in files:
        for event in events:
            stats.relevant += 1
            chunk.append((event, file_id))
            if len(chunk) >= size:
                _insert_chunk(source, via, chunk, linker, stats)
                chunk = []
    if chunk:
        _insert_chunk(source, via, chunk, linker, stats)
    return stats


def _insert_chunk(
    source: RegistrySource | None,
    via: str,
    chunk: list[tuple[PreparedRow, int | None]],
    linker: Linker,
    stats: StoreStats,
) -> None:
    unique: dict[str, tuple[PreparedRow, int | None]] = {}
    for pair in chunk:
        unique.setdefault(pair[0][_ID], pair)
    # Which events are new matters for the few that touch deployments (endpoint, config, model):
    # PostgreSQL's INSERT ... RETURNING says so; elsewhere those few are looked up first. The rest
    # are inserted with conflicts ignored and counted from the row count.
    fresh = list(unique.values())
    returning = connections[router.db_for_write(CloudTrailEvent)].vendor == "postgresql"
    known: set[str] = set()
    if not returning:
        deploying = [e[_ID] for e, _ in fresh if e[_ENDPOINT] or e[_MODEL] or e[_CONFIG]]
        if deploying:
            known = set(CloudTrailEvent.objects.filter(event_id__in=deploying).values_list("event_id", flat=True))
            fresh = [pair for pair in fresh if pair[0][_ID] not in known]
    linker.prefetch_users(name for event, _ in fresh for name in event[_CANDIDATES])
    now = timezone.now()
    source_id = source.pk if source else None
    outcome = _insert_rows([_values(source_id, via, event, linker, now, file_id) for event, file_id in fresh])
    inserted_ids: set[str] | None = None
    if isinstance(outcome, set):
        inserted_ids = outcome
        fresh = [pair for pair in fresh if pair[0][_ID] in outcome]
        inserted = len(outcome)
    else:
        inserted = outcome
    stats.inserted += inserted
    stats.duplicates += len(chunk) - inserted
    if inserted < len(unique):
        _attach_files(unique.values(), inserted_ids)
    for event, _ in fresh:
        if event[_ERROR]:
            continue
        if event[_ENDPOINT]:
            stats.endpoints.add(event[_ENDPOINT])
        if event[_CONFIG] and event[_RESOURCE_TYPE] == ENDPOINT_CONFIG:
            stats.configs.add(event[_CONFIG])
        if event[_MODEL]:
            stats.models.add(event[_MODEL])


def _attach_files(pairs: Iterable[tuple[PreparedRow, int | None]], inserted_ids: set[str] | None) -> None:
    """Events of this batch stored before without a file (LookupEvents) get their file now: one
    UPDATE per file, only for batches that met stored events (a backfill of new events skips it)."""
    by_file: dict[int, list[str]] = {}
    for event, file_id in pairs:
        if file_id is not None and (inserted_ids is None or event[_ID] not in inserted_ids):
            by_file.setdefault(file_id, []).append(event[_ID])
    for file_id, event_ids in by_file.items():
        CloudTrailEvent.objects.filter(event_id__in=event_ids, trail_file__isnull=True).update(trail_file_id=file_id)
