"""/audit/: CloudTrail calls and audit entries, filtered, with keyset paging (no OFFSET, no COUNT)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry_app.audit.log import audit_append
from registry_app.audit.params import parse_when
from registry_app.audit.search import SearchFilters, audit_search
from registry_app.audit.timeline_items import TimelineItem
from registry_app.models import ModelPackage
from tests.audit.builders import at, cloudtrail, status_call

pytestmark = pytest.mark.django_db


def _populate(package: ModelPackage) -> None:
    for i in range(30):
        actor = "carol" if i % 3 == 0 else "dave"
        status_call(package, "Approved" if i % 2 else "Rejected", at(minutes=i // 2), actor=actor)  # pairs share a time
    for i in range(5):
        cloudtrail("CreateEndpoint", at(minutes=i), endpoint_name="credit-prod", actor="carol")
    for i in range(7):
        audit_append("signoff.recorded", actor="carol" if i % 2 else "erin", via="web", package=package)


def _walk(client: Client, params: dict[str, str]) -> list[str]:
    """Follow the "Older" links of /audit/ to the end; returns every evidence id shown, in order."""
    url = reverse("registry:audit_search")
    seen: list[str] = []
    query = dict(params)
    for _ in range(100):
        response = client.get(url, query)
        assert response.status_code == 200
        body = response.content.decode()
        seen += re.findall(r'<summary><code class="mono">([^<]+)</code></summary>', body)
        match = re.search(r'href="\?([^"]*before=([^"&]+)[^"]*)"[^>]*>Older', body)
        if not match:
            return seen
        query = {**params, "before": match.group(2)}
    raise AssertionError("pagination does not end")


def test_keyset_pages_cover_everything_once(package: ModelPackage) -> None:
    _populate(package)
    everything = [item.evidence_id for item in audit_search(SearchFilters(limit=500)).items]
    assert len(everything) == 30 + 5 + 7
    pages: list[str] = []
    before = None
    while True:
        result = audit_search(SearchFilters(limit=8, before=before))
        pages += [item.evidence_id for item in result.items]
        if result.older is None:
            break
        before = result.older
    assert pages == everything


def test_page_links_walk_without_duplicates(package: ModelPackage, viewer_client: Client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _populate(package)
    everything = [item.evidence_id for item in audit_search(SearchFilters(limit=500)).items]
    assert len(everything) == 42 + 2  # the viewer's role grant and login are audited too
    monkeypatch.setattr("registry_app.audit.search.MAX_PAGE_SIZE", 6)  # pages of 6 through the view
    seen = _walk(viewer_client, {})
    assert seen == everything
    carol = _walk(viewer_client, {"actor": "carol"})
    assert len(carol) == 10 + 5 + 3 and len(set(carol)) == len(carol)


def test_filters(package: ModelPackage) -> None:
    _populate(package)

    def ids(**filters: object) -> list[TimelineItem]:
        return audit_search(SearchFilters(limit=500, **filters)).items  # type: ignore[arg-type]

    assert {i.actor for i in ids(actor="carol")} == {"carol"}
    assert {i.title for i in ids(event="CreateEndpoint")} == {"CreateEndpoint"}
    assert len(ids(event="signoff.recorded")) == 7
    assert len(ids(resource=package.arn)) == 30 + 7  # CloudTrail resource name, audit entries' package ARN
    assert len(ids(resource="credit-prod")) == 5
    window = ids(since=at(minutes=3), until=at(minutes=5))
    assert window and all(at(minutes=3) <= i.at <= at(minutes=5) for i in window)
    assert {i.kind for i in ids(kinds=("audit",))} == {"audit"}


def test_query_uses_keyset_not_offset_or_count(package: ModelPackage, viewer_client: Client) -> None:
    _populate(package)
    first = audit_search(SearchFilters(limit=5))
    assert first.older is not None
    with CaptureQueriesContext(connection) as ctx:
        response = viewer_client.get(
            reverse("registry:audit_search"), {"actor": "carol", "before": first.older.encode()}
        )
    assert response.status_code == 200
    sql = [q["sql"].upper() for q in ctx.captured_queries if "CLOUDTRAILEVENT" in q["sql"].upper()]
    # the search itself, plus (outside_list.mark_items) the page's approval calls by primary key
    marking = [q for q in sql if '"REGISTRY_APP_CLOUDTRAILEVENT"."ID" IN (' in q and "LIMIT" not in q]
    sql = [q for q in sql if q not in marking]
    assert len(sql) == 1 and len(marking) <= 1
    assert "OFFSET" not in sql[0] and "COUNT(" not in sql[0]
    assert '"EVENT_TIME" <=' in sql[0] and "LIMIT" in sql[0]


def test_bad_dates_are_400(viewer_client: Client) -> None:
    url = reverse("registry:audit_search")
    assert viewer_client.get(url, {"since": "yesterday"}).status_code == 400
    assert viewer_client.get(url, {"since": "2025-03-10", "until": "2025-03-01"}).status_code == 400
    assert viewer_client.get(url, {"since": "2025-03-01", "until": "2025-03-10T12:00Z"}).status_code == 200


def test_parse_when() -> None:
    assert parse_when("2025-03-10").isoformat() == "2025-03-10T00:00:00+00:00"  # type: ignore[union-attr]
    assert parse_when("2025-03-10", end=True).isoformat() == "2025-03-10T23:59:59.999999+00:00"  # type: ignore[union-attr]
    assert parse_when("2025-03-10T09:30:00Z").isoformat() == "2025-03-10T09:30:00+00:00"  # type: ignore[union-attr]
    assert parse_when("2025-03-10T11:30+02:00").hour == 11  # type: ignore[union-attr]
    assert parse_when("") is None
    with pytest.raises(ValueError):
        parse_when("2025-13-45")
