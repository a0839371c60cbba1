"""On PostgreSQL, the audit search walks CloudTrailEvent's indexes: no sequential scan, no OFFSET, no COUNT.

Skipped on SQLite. 20,000 events stand in for a million: enough for the planner to prefer an index
whenever one fits (the plans do not change shape with more rows).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from django.db import connection

from registry_app.audit.paging import PAGE_SIZE, Cursor
from registry_app.audit.search import SearchFilters, _keyset_search, _search_querysets, audit_search
from registry_app.audit.timeline import ordered
from registry_app.models import CloudTrailEvent, ModelPackage

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's"),
]

ROWS = 20_000
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
ACTORS = [f"user{i}" for i in range(200)]
NAMES = ["UpdateModelPackage", "CreateModelPackage", "DescribeModelPackage", "UpdateEndpoint", "CreateModel"]


@pytest.fixture
def many_events(package: ModelPackage) -> ModelPackage:
    rng = random.Random(7)
    rows = [
        CloudTrailEvent(
            event_id=f"evt-{i:07d}",
            via=CloudTrailEvent.Via.S3,
            event_time=START + dt.timedelta(seconds=i * 37 // 3),  # some share a second
            event_name=rng.choice(NAMES),
            actor_name=rng.choice(ACTORS),
            resource_name=f"arn:aws:sagemaker:eu-west-1:111122223333:model-package/g{i % 500}/{i % 7}",
            package=package if i % 1000 == 0 else None,
            raw={"eventID": f"evt-{i:07d}"},
        )
        for i in range(ROWS)
    ]
    CloudTrailEvent.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {CloudTrailEvent._meta.db_table}")
    return package


def _plan(filters: SearchFilters) -> str:
    source, qs = next((s, q) for s, q in _search_querysets(filters) if s.key == "cloudtrail")
    if filters.before is not None:
        qs = _keyset_search(source, qs, filters.before)
    qs = ordered(source, qs, descending=True)[: PAGE_SIZE + 1]
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    return plan


def _rows_touched(plan: str, table: str) -> int:
    """Rows the scan of ``table`` returned plus those its filter removed (from EXPLAIN ANALYZE)."""
    lines = plan.splitlines()
    for index, line in enumerate(lines):
        if f"on {table}" in line and "actual" in line:
            touched = int(line.split("actual", 1)[1].split("rows=", 1)[1].split()[0])
            for follow in lines[index + 1 : index + 4]:
                if "Rows Removed by Filter" in follow:
                    touched += int(follow.rsplit(":", 1)[1])
            return touched
    raise AssertionError(f"no scan of {table} in:\n{plan}")


def _cursor_deep_in_history() -> Cursor:
    row = CloudTrailEvent.objects.order_by("-event_time", "-id")[ROWS // 2]
    return Cursor(row.event_time, "cloudtrail", f"{row.pk:020d}")


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"actor": "user42"},
        {"event": "UpdateModelPackage"},
        {"resource": "arn:aws:sagemaker:eu-west-1:111122223333:model-package/g7/0"},
        {"since": START + dt.timedelta(days=1), "until": START + dt.timedelta(days=2)},
    ],
    ids=["newest", "actor", "event", "resource", "range"],
)
@pytest.mark.parametrize("deep", [False, True], ids=["first-page", "deep-page"])
def test_search_uses_an_index(many_events: ModelPackage, filters: dict[str, Any], deep: bool) -> None:
    search = SearchFilters(**filters, before=_cursor_deep_in_history() if deep else None)
    plan = _plan(search)
    table = CloudTrailEvent._meta.db_table
    assert f"Seq Scan on {table}" not in plan, plan
    assert "Index" in plan, plan
    assert "OFFSET" not in plan.upper()
    # the CloudTrail scan reads about a page of rows, on the first page and deep in history alike
    assert _rows_touched(plan, table) < ROWS // 20, plan


def test_deep_pages_stay_cheap_end_to_end(many_events: ModelPackage) -> None:
    from django.test.utils import CaptureQueriesContext

    cursor = _cursor_deep_in_history()
    with CaptureQueriesContext(connection) as ctx:
        result = audit_search(SearchFilters(kinds=("cloudtrail",), before=cursor))
    assert len(result.items) == PAGE_SIZE
    assert all(item.sort_key < (cursor.at, cursor.source, cursor.ident) for item in result.items)
    (query,) = ctx.captured_queries
    assert "OFFSET" not in query["sql"].upper() and "COUNT(" not in query["sql"].upper()
