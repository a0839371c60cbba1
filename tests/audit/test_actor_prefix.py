"""/audit/?actor= matches by prefix, ignoring case, in one query per source; on PostgreSQL through the
``LOWER(actor_name) text_pattern_ops`` expression index (migration 0011)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from registry_app.audit.log import audit_append
from registry_app.audit.search import SearchFilters, _search_querysets, audit_search
from registry_app.models import CloudTrailEvent
from tests.audit.builders import cloudtrail

pytestmark = pytest.mark.django_db

START = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def actors(db: None) -> None:
    for minute, actor in enumerate(["Carol.Smith", "carol", "caroline", "bob", "a_b", "axb", "100%", "1000"]):
        cloudtrail("UpdateModelPackage", START + dt.timedelta(minutes=minute), actor=actor)
    audit_append("signoff.recorded", actor="CAROL-admin", via="web")


def _actors(prefix: str) -> set[str]:
    return {item.actor for item in audit_search(SearchFilters(actor=prefix)).items}


def test_prefix_ignoring_case(actors: None) -> None:
    assert _actors("car") == {"Carol.Smith", "carol", "caroline", "CAROL-admin"}
    assert _actors("CAROL") == {"Carol.Smith", "carol", "caroline", "CAROL-admin"}
    assert _actors("carol.") == {"Carol.Smith"}
    assert _actors("zed") == set()


def test_wildcards_are_literal(actors: None) -> None:
    assert _actors("a_") == {"a_b"}
    assert _actors("100%") == {"100%"}


def test_one_query_per_source(actors: None, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    with django_assert_num_queries(2):
        audit_search(SearchFilters(actor="car"))
    with django_assert_num_queries(1):
        audit_search(SearchFilters(actor="car", kinds=("cloudtrail",)))


def test_page_and_timeline_filter_by_prefix(actors: None, viewer_client: Client, package) -> None:  # type: ignore[no-untyped-def]
    body = viewer_client.get(reverse("registry:audit_search"), {"actor": "CARO"}).content.decode()
    assert "caroline" in body and ">bob<" not in body
    cloudtrail("UpdateModelPackage", START, actor="Dana.Lee", package=package)
    url = reverse("registry:package_audit", args=[package.group.name, package.version])
    timeline = viewer_client.get(url, {"actor": "dana"})
    assert [item.actor for item in timeline.context["page"].items] == ["Dana.Lee"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's")
def test_postgresql_uses_the_prefix_index(db: None) -> None:
    rows = [
        CloudTrailEvent(
            event_id=f"evt-{i:06d}",
            via=CloudTrailEvent.Via.S3,
            event_time=START + dt.timedelta(seconds=i),
            event_name="UpdateModelPackage",
            actor_name=f"User{i % 5000}",
            raw={},
        )
        for i in range(20_000)
    ]
    CloudTrailEvent.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {CloudTrailEvent._meta.db_table}")
    querysets = _search_querysets(SearchFilters(actor="user4321", kinds=("cloudtrail",)))
    ((_, qs),) = querysets
    sql, params = qs.order_by("-event_time", "-id")[:51].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "ct_actor_lower_prefix" in plan, plan
    assert f"Seq Scan on {CloudTrailEvent._meta.db_table}" not in plan, plan
