"""Outside decisions, consistently: /audit/bypasses/ lists every registry decision the dashboard did not
push (before governance apart from while governed); the as-of page and the timelines use the same
words and link to the same entry."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registry_app.audit.outside_decisions import package_observed_status_change
from registry_app.audit.outside_list import BEFORE, DURING, PHASES, outside_page
from registry_app.models import ModelPackage, ModelPackageGroup
from registry_app.models.registry import ApprovalStatus
from tests.audit.builders import deployment, push, status_call
from tests.factories import EndpointFactory, ModelPackageFactory

pytestmark = pytest.mark.django_db

APPROVED = ApprovalStatus.APPROVED


@pytest.fixture
def decisions(package: ModelPackage) -> dict[str, Any]:
    """v3 approved in Studio a year before the dashboard mirrored its group; v4 approved in Studio while
    governed (flagged by the sync); v5 approved through the dashboard (its push explains the call)."""
    group = package.group
    governed = timezone.now() - dt.timedelta(days=30)  # the dashboard first mirrored the group a month ago
    ModelPackageGroup.objects.filter(pk=group.pk).update(first_seen_at=governed)
    group.refresh_from_db()
    before = status_call(package, APPROVED, governed - dt.timedelta(days=365), actor="olivia")
    v4 = ModelPackageFactory(group=group, version=4)
    during_call = status_call(v4, APPROVED, timezone.now() - dt.timedelta(minutes=5), actor="mallory")
    flagged = package_observed_status_change(v4, ApprovalStatus.PENDING, APPROVED, timezone.now())
    v5 = ModelPackageFactory(group=group, version=5)
    push(v5, APPROVED, timezone.now() - dt.timedelta(minutes=2), sent=timezone.now() - dt.timedelta(minutes=2))
    pushed = status_call(v5, APPROVED, timezone.now() - dt.timedelta(minutes=2), actor="governance-dashboard")
    return {"before": before, "during_call": during_call, "flagged": flagged, "pushed": pushed, "v4": v4}


def test_list_has_both_phases_and_not_the_pushed_one(decisions: dict[str, Any]) -> None:
    page = outside_page()
    by_anchor = {e.anchor: e for e in page.entries}
    assert by_anchor[f"cloudtrail-{decisions['before'].pk}"].phase == BEFORE
    assert by_anchor[f"outside-{decisions['flagged'].pk}"].phase == DURING
    assert f"cloudtrail-{decisions['during_call'].pk}" not in by_anchor  # claimed by the flagged row
    assert f"cloudtrail-{decisions['pushed'].pk}" not in by_anchor  # the dashboard pushed it
    assert len(page.entries) == 2
    assert [e.anchor for e in outside_page(phase=BEFORE).entries] == [f"cloudtrail-{decisions['before'].pk}"]


def test_paging_walks_every_entry_once(package: ModelPackage) -> None:
    governed = package.group.first_seen_at
    calls = [status_call(package, APPROVED, governed - dt.timedelta(days=i + 1), actor=f"a{i}") for i in range(7)]
    seen, before = [], None
    for _ in range(10):
        page = outside_page(before=before, limit=3)
        seen += [e.pk for e in page.entries]
        if page.older is None:
            break
        before = page.older
    assert seen == [c.pk for c in calls]


def test_page_shows_the_words_and_anchors(decisions: dict[str, Any], viewer_client: Client) -> None:
    body = viewer_client.get(reverse("registry:audit_bypasses")).content.decode()
    assert f'id="cloudtrail-{decisions["before"].pk}"' in body and f'id="outside-{decisions["flagged"].pk}"' in body
    assert PHASES[BEFORE] in body and PHASES[DURING] in body
    only_before = viewer_client.get(reverse("registry:audit_bypasses"), {"governance": BEFORE})
    assert f'id="outside-{decisions["flagged"].pk}"' not in only_before.content.decode()
    assert viewer_client.get(reverse("registry:audit_bypasses"), {"governance": "x"}).status_code == 400


def _entry_link(body: str, anchor: str) -> str:
    match = re.search(r'href="([^"]*#' + re.escape(anchor) + r')"', body)
    assert match, f"no link to #{anchor}"
    return html.unescape(match.group(1))


def test_timeline_marks_and_links_the_same_entry(decisions: dict[str, Any], viewer_client: Client) -> None:
    package = decisions["before"].package
    body = viewer_client.get(reverse("registry:package_audit", args=[package.group.name, package.version]))
    text = body.content.decode()
    assert PHASES[BEFORE] in text
    link = _entry_link(text, f"cloudtrail-{decisions['before'].pk}")
    target = viewer_client.get(link)
    assert target.status_code == 200
    assert target.context["page"].entries[0].anchor == f"cloudtrail-{decisions['before'].pk}"

    v4 = decisions["v4"]
    text = viewer_client.get(reverse("registry:package_audit", args=[v4.group.name, v4.version])).content.decode()
    assert PHASES[DURING] in text
    link = _entry_link(text, f"outside-{decisions['flagged'].pk}")
    assert viewer_client.get(link).context["page"].entries[0].anchor == f"outside-{decisions['flagged'].pk}"
    pushed = decisions["pushed"].package
    text = viewer_client.get(reverse("registry:package_audit", args=[pushed.group.name, 5])).content.decode()
    assert "outside-mark" not in text


def test_as_of_uses_the_same_words_and_link(decisions: dict[str, Any], viewer_client: Client) -> None:
    package = decisions["before"].package
    EndpointFactory(source=package.source, name="credit-prod")
    start = decisions["before"].event_time + dt.timedelta(hours=1)
    deployment("credit-prod", package, start, None)
    at = (start + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    body = viewer_client.get(reverse("registry:as_of"), {"endpoint": "credit-prod", "at": at}).content.decode()
    assert "outside the dashboard, before governance" in body
    link = _entry_link(body, f"cloudtrail-{decisions['before'].pk}")
    assert viewer_client.get(link).context["page"].entries[0].anchor == f"cloudtrail-{decisions['before'].pk}"


def test_bypasses_query_count_is_constant(
    package: ModelPackage, viewer_client: Client, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    url = reverse("registry:audit_bypasses")
    status_call(package, APPROVED, package.group.first_seen_at - dt.timedelta(days=1), actor="a")
    viewer_client.get(url)
    with django_assert_num_queries(7) as few:  # session, user, nav badge; flagged, calls, claimed, pushes
        viewer_client.get(url)
    for version in range(10, 30):
        other = ModelPackageFactory(group=package.group, version=version)
        status_call(other, APPROVED, package.group.first_seen_at - dt.timedelta(days=version), actor="b")
        package_observed_status_change(other, ApprovalStatus.REJECTED, APPROVED, timezone.now())
    with django_assert_num_queries(len(few.captured_queries)):
        response = viewer_client.get(url)
    assert len(response.context["page"].entries) > 20
