"""Merged timelines: every kind in time order, cursor paging without gaps, filters, constant queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry_app.audit.log import audit_append
from registry_app.audit.timeline import (
    TimelineFilters,
    TimelinePage,
    endpoint_scope,
    group_scope,
    package_scope,
    timeline_page,
)
from registry_app.audit.timeline_items import KINDS
from registry_app.models import ModelPackage
from tests.audit.builders import (
    at,
    cloudtrail,
    decision,
    deployment,
    notification,
    observe,
    push,
    signoff,
    status_call,
)
from tests.audit.conftest import make_user
from tests.factories import EndpointFactory, EndpointVariantFactory, ModelPackageFactory

pytestmark = pytest.mark.django_db


def _history(package: ModelPackage, rounds: int, offset: float = 0.0) -> None:
    """``rounds`` x every kind of item (2 of them push items: created and sent; 2 deployment: start, end)."""
    reviewer = make_user(f"carol{package.pk}-{offset}", "ml-lead") if rounds else None
    for i in range(rounds):
        base = offset + i * 10
        observe(package, at(base + 1), {"approval_status": ["PendingManualApproval", "Approved"]})
        status_call(package, "Approved", at(base + 2), actor="alice")
        signoff(package, reviewer, "ml-lead", at(base + 3))
        made = decision(package, "Approved", at(base + 4), reviewer)
        push(package, "Approved", at(base + 5), sent=at(base + 6), decision_row=made)
        notification(package, reviewer, at(base + 7))
        deployment("credit-prod", package, at(base + 8), at(base + 9))


def _page(package: ModelPackage, **filters: Any) -> TimelinePage:
    return timeline_page(package_scope(package), TimelineFilters(**filters))


def test_timeline_merges_every_kind_newest_first(package: ModelPackage) -> None:
    _history(package, 1)
    audit_append("signoff.recorded", actor="carol", via="web", package=package, message="signed")
    page = _page(package)
    kinds = [item.kind for item in page.items]
    assert set(kinds) == set(KINDS)
    times = [item.at for item in page.items]
    assert times == sorted(times, reverse=True)
    by_kind_order = [item.source for item in page.items if item.kind != "audit"]
    assert by_kind_order == [
        "deployment.end",
        "deployment.start",
        "notification",
        "push.sent",
        "push.created",
        "decision",
        "signoff",
        "cloudtrail",
        "observation",
    ]
    evidence = {item.evidence_id.split(":")[0] for item in page.items}
    assert evidence == {
        "audit",
        "cloudtrail",
        "decision",
        "deployment",
        "notification",
        "observation",
        "push",
        "signoff",
    }
    assert page.older is None


def test_cursor_pages_have_no_gaps_or_duplicates(package: ModelPackage) -> None:
    _history(package, 6)
    everything = [item.evidence_id + item.source for item in _page(package, limit=500).items]
    assert len(everything) == 6 * 9
    seen: list[str] = []
    before = None
    while True:
        page = _page(package, limit=7, before=before)
        seen += [item.evidence_id + item.source for item in page.items]
        if page.older is None:
            break
        before = page.older
    assert seen == everything

    # ...and "newer than a cursor" returns exactly the items above it, oldest batch first.
    middle = _page(package, limit=20).items[-1].cursor
    newer = _page(package, limit=500, after=middle)
    assert [i.evidence_id + i.source for i in newer.items] == everything[:19]


def test_equal_timestamps_are_paged_by_source_and_id(package: ModelPackage) -> None:
    for _ in range(5):
        status_call(package, "Approved", at(1))
        observe(package, at(1), {"description": ["a", "b"]})
    ids = []
    before = None
    while True:
        page = _page(package, limit=3, before=before)
        ids += [item.evidence_id for item in page.items]
        if page.older is None:
            break
        before = page.older
    assert len(ids) == 10 and len(set(ids)) == 10


def test_kind_and_actor_filters(package: ModelPackage) -> None:
    _history(package, 2)
    only = _page(package, kinds=("cloudtrail", "signoff"))
    assert {item.kind for item in only.items} == {"cloudtrail", "signoff"}
    assert len(only.items) == 4
    by_alice = _page(package, actor="ALICE")
    assert {item.kind for item in by_alice.items} == {"cloudtrail"}
    assert "observation" in by_alice.skipped_for_actor


def _count(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


def test_page_query_count_is_constant(package: ModelPackage, viewer_client: Client) -> None:
    other = ModelPackageFactory(group=package.group, version=4)
    _history(package, 1)  # 10 items (9 + the audit entry below)
    audit_append("x", via="web", package=package)
    _history(other, 4, offset=100)  # 40 items
    for i in range(4):
        audit_append(f"x{i}", via="web", package=other)
    small_url = reverse("registry:package_audit", args=[package.group.name, package.version])
    large_url = reverse("registry:package_audit", args=[other.group.name, other.version])
    assert len(_page(package).items) == 10
    assert len(_page(other).items) == 40
    small, large = _count(viewer_client, small_url), _count(viewer_client, large_url)
    assert small == large
    # session + user + roles + package + 12 sources (+ the nav's own queries), whatever the item count
    assert large <= 25


def test_tiny_and_large_timelines_cost_the_same(package: ModelPackage, viewer_client: Client) -> None:
    """The brief's 2 vs 40 items."""
    other = ModelPackageFactory(group=package.group, version=5)
    observe(package, at(1), {"description": ["a", "b"]})
    status_call(package, "Approved", at(2))
    _history(other, 4, offset=50)
    for i in range(4):
        audit_append(f"x{i}", via="web", package=other)
    assert len(_page(package).items) == 2
    assert len(_page(other).items) == 40
    small = _count(viewer_client, reverse("registry:package_audit", args=[package.group.name, package.version]))
    large = _count(viewer_client, reverse("registry:package_audit", args=[other.group.name, other.version]))
    assert small == large


def test_htmx_load_older_returns_rows_only(package: ModelPackage, viewer_client: Client) -> None:
    _history(package, 2)
    url = reverse("registry:package_audit", args=[package.group.name, package.version])
    first = _page(package, limit=5)
    response = viewer_client.get(url, {"before": first.items[-1].cursor.encode()}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and 'class="tl-item' in body
    assert "Load older entries" in body or "End of the recorded history" in body
    newer = viewer_client.get(url, {"after": first.items[-1].cursor.encode()}, HTTP_HX_REQUEST="true")
    assert 'id="timeline-newer"' in newer.content.decode()
    assert newer.content.decode().count('class="tl-item') == 4


def test_page_escapes_registry_text_and_shows_raw_event(package: ModelPackage, viewer_client: Client) -> None:
    cloudtrail(
        "UpdateModelPackage",
        at(1),
        actor="<img src=x onerror=alert(1)>",
        package=package,
        request={"modelApprovalStatus": "Approved", "approvalDescription": "<script>alert(2)</script>"},
    )
    body = viewer_client.get(reverse("registry:package_audit", args=[package.group.name, package.version])).content
    text = body.decode()
    assert "<script>alert(2)" not in text and "<img src=x" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<details" in text and "&quot;approvalDescription&quot;" in text


def test_group_and_endpoint_timelines(package: ModelPackage, viewer_client: Client) -> None:
    other = ModelPackageFactory(group=package.group, version=9)
    status_call(package, "Approved", at(1))
    status_call(other, "Rejected", at(2))
    cloudtrail("CreateEndpoint", at(3), endpoint_name="credit-prod")
    deployment("credit-prod", package, at(3))
    page = timeline_page(group_scope(package.group), TimelineFilters())
    assert {item.package_version for item in page.items} == {3, 9}
    response = viewer_client.get(reverse("registry:group_audit", args=[package.group.name]))
    assert response.status_code == 200 and "credit-risk v9" in response.content.decode()

    endpoint = EndpointFactory(source=package.group.source, name="credit-prod")
    EndpointVariantFactory(endpoint=endpoint, package=package, variant_name="AllTraffic")
    ep = timeline_page(endpoint_scope("credit-prod"), TimelineFilters())
    assert [item.source for item in ep.items] == ["deployment.start", "cloudtrail"]
    response = viewer_client.get(reverse("registry:endpoint_detail", args=["credit-prod"]))
    text = response.content.decode()
    assert response.status_code == 200
    assert "Current variants" in text and "Deployment history" in text and "CreateEndpoint" in text


def test_unknown_objects_are_404(db: None, viewer_client: Client) -> None:
    assert viewer_client.get(reverse("registry:package_audit", args=["nope", 1])).status_code == 404
    assert viewer_client.get(reverse("registry:group_audit", args=["nope"])).status_code == 404
    assert viewer_client.get(reverse("registry:endpoint_detail", args=["nope"])).status_code == 404


def test_malformed_cursor_is_400(package: ModelPackage, viewer_client: Client) -> None:
    url = reverse("registry:package_audit", args=[package.group.name, package.version])
    assert viewer_client.get(url, {"before": "not-a-cursor"}).status_code == 400
    assert viewer_client.get(url, {"kind": "nonsense"}).status_code == 400


def test_package_page_links_to_its_timeline(package: ModelPackage, viewer_client: Client) -> None:
    body = viewer_client.get(reverse("registry:package_detail", args=[package.group.name, package.version])).content
    assert reverse("registry:package_audit", args=[package.group.name, package.version]).encode() in body
