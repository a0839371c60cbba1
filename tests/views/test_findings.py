"""Findings through the pages: raise, remediate, close, accept (permissions, CSRF, 4xx on bad input),
approve with conditions from the sign-off form, the queue's Findings tab, the group page's column,
escaping, and query counts that stay constant as findings grow."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registry_app.models import Decision, Finding, ModelPackage, SignOff
from registry_app.review.findings import finding_raise
from tests.views.test_review_support import XSS, client_for, package_in_state, persona_user, url

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
EVIDENCE = "https://wiki.example.com/evidence/7"


def _due(days: int = 30) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


@pytest.fixture
def pending() -> ModelPackage:
    return package_in_state("pending")


@pytest.fixture
def users() -> dict[str, Any]:
    return {name: persona_user(name) for name in ("nobody", "viewer", "mlead", "fair", "comp", "staff")}


def _finding(
    package: ModelPackage, user: Any, severity: str = "high", title: str = "PSI drift on age", **extra: Any
) -> Finding:
    fields = {"owner_email": "risk@example.com", "due_date": timezone.localdate() + dt.timedelta(days=30)} | extra
    return finding_raise(user=user, package_id=package.pk, title=title, severity=severity, **fields)


def action_url(finding: Finding, action: str) -> str:
    return reverse("registry:finding_action", args=[finding.pk, action])


RAISE = {"title": "PSI drift on age", "severity": "high", "owner_email": "risk@example.com", "due_date": _due()}


# --------------------------------------------------------------------------------------------- raise


@pytest.mark.parametrize(("persona", "status"), [("fair", 302), ("staff", 302), ("viewer", 403), ("nobody", 403)])
def test_raise_by_persona(pending: ModelPackage, users: dict[str, Any], persona: str, status: int) -> None:
    response = client_for(users[persona]).post(url("finding_raise", pending), RAISE)
    assert response.status_code == status
    assert Finding.objects.count() == (1 if status == 302 else 0)


def test_raise_then_the_review_page_shows_it_blocking(pending: ModelPackage, users: dict[str, Any]) -> None:
    client = client_for(users["fair"])
    response = client.post(url("finding_raise", pending), {**RAISE, "owner": "mlead", "owner_email": ""}, follow=True)
    finding = Finding.objects.get()
    page = response.content.decode()
    assert f"Finding {finding.ref} was raised and blocks approval." in page
    assert 'id="finding-block"' in page and f'id="finding-{finding.pk}"' in page
    assert 'value="approve"' not in page  # the form offers Reject only
    assert finding.owner == users["mlead"]


@pytest.mark.parametrize(
    "data",
    [
        {**RAISE, "title": ""},
        {**RAISE, "severity": "apocalyptic"},
        {**RAISE, "owner_email": "", "owner": ""},
        {**RAISE, "owner": "no-such-user"},
        {**RAISE, "due_date": "2020-01-01"},
        {**RAISE, "due_date": "not a date"},
        {**RAISE, "title": "x" * 300},
    ],
)
def test_raise_refuses_bad_input_with_400(pending: ModelPackage, users: dict[str, Any], data: dict[str, str]) -> None:
    for headers in ({}, HTMX):
        response = client_for(users["fair"]).post(url("finding_raise", pending), data, headers=headers)
        assert response.status_code == 400
        assert 'role="alert"' in response.content.decode()
    assert not Finding.objects.exists()


def test_raise_on_an_unknown_package_is_404(users: dict[str, Any]) -> None:
    response = client_for(users["fair"]).post(reverse("registry:finding_raise", args=["nope", 9]), RAISE)
    assert response.status_code == 404


# --------------------------------------------------------------------------------------------- actions


def test_close_with_evidence_by_compliance(pending: ModelPackage, users: dict[str, Any]) -> None:
    finding = _finding(pending, users["fair"])
    client = client_for(users["comp"])
    response = client.post(action_url(finding, "close"), {"comment": "Retrained.", "evidence_url": EVIDENCE})
    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.state == Finding.State.CLOSED and finding.evidence_url == EVIDENCE
    page = client.get(response["Location"]).content.decode()
    assert f"Finding {finding.ref} was closed." in page and f'href="{EVIDENCE}"' in page


def test_htmx_actions_return_the_panel(pending: ModelPackage, users: dict[str, Any]) -> None:
    finding = _finding(pending, users["fair"])
    response = client_for(users["fair"]).post(action_url(finding, "remediate"), headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"].startswith('{"signoff-recorded"')
    assert "In remediation" in response.content.decode()


@pytest.mark.parametrize(
    ("persona", "action", "data", "status"),
    [
        ("viewer", "remediate", {}, 403),
        ("mlead", "close", {"comment": "x", "evidence_url": EVIDENCE}, 403),
        ("fair", "accept", {"justification": "fine"}, 403),  # the raiser, but not compliance
        ("comp", "accept", {"justification": ""}, 400),
        ("comp", "close", {"comment": "x", "evidence_url": "javascript:alert(1)"}, 400),
        ("comp", "close", {"comment": "", "evidence_url": EVIDENCE}, 400),
    ],
)
def test_refused_actions(
    pending: ModelPackage, users: dict[str, Any], persona: str, action: str, data: dict[str, str], status: int
) -> None:
    finding = _finding(pending, users["fair"])
    response = client_for(users[persona]).post(action_url(finding, action), data)
    assert response.status_code == status
    assert Finding.objects.get(pk=finding.pk).state == Finding.State.OPEN


def test_unknown_finding_or_action_is_404_and_get_is_405(pending: ModelPackage, users: dict[str, Any]) -> None:
    finding = _finding(pending, users["fair"])
    client = client_for(users["comp"])
    assert client.post(reverse("registry:finding_action", args=[999999, "close"])).status_code == 404
    assert client.post(action_url(finding, "delete")).status_code == 404
    assert client.get(action_url(finding, "remediate")).status_code == 405
    assert client.get(url("finding_raise", pending)).status_code == 405


def test_posts_without_csrf_are_403(pending: ModelPackage, users: dict[str, Any]) -> None:
    finding = _finding(pending, users["fair"])
    client = client_for(users["comp"], enforce_csrf_checks=True)
    for target, data in (
        (url("finding_raise", pending), RAISE),
        (action_url(finding, "remediate"), {}),
        (action_url(finding, "accept"), {"justification": "x"}),
    ):
        response = client.post(target, data)
        assert response.status_code == 403 and b"CSRF" in response.content
    assert Finding.objects.get().state == Finding.State.OPEN


def test_anonymous_is_sent_to_login(pending: ModelPackage, users: dict[str, Any]) -> None:
    finding = _finding(pending, users["fair"])
    response = client_for(None).post(action_url(finding, "remediate"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_registry_text_is_escaped(pending: ModelPackage, users: dict[str, Any]) -> None:
    _finding(pending, users["fair"], title=XSS, description=XSS)
    page = client_for(users["viewer"]).get(url("package_detail", pending)).content.decode()
    assert XSS not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --------------------------------------------------------------------------------------------- conditions


def test_approve_with_a_condition_from_the_form(pending: ModelPackage, users: dict[str, Any]) -> None:
    client_for(users["mlead"]).post(url("signoff", pending), {"decision": "approve"})
    data = {
        "decision": "approve",
        "cond_title_0": "Monitor DPPL monthly",
        "cond_severity_0": "medium",
        "cond_owner_0": "mlead",
        "cond_due_0": _due(90),
    }
    response = client_for(users["fair"]).post(url("signoff", pending), data)
    assert response.status_code == 302
    signoff = SignOff.objects.get(user=users["fair"])
    condition = Finding.objects.get(signoff=signoff)
    assert list(signoff.conditions.all()) == [condition] and not condition.blocks_approval
    client_for(users["comp"]).post(url("signoff", pending), {"decision": "approve"})
    decision = Decision.objects.get(package=pending)
    assert f"Conditions: {condition.ref} Monitor DPPL monthly (due {_due(90)})" in decision.description
    page = client_for(users["viewer"]).get(url("package_detail", pending)).content.decode()
    assert "Approved with conditions:" in page and condition.ref in page
    group_page = (
        client_for(users["viewer"]).get(reverse("registry:group_detail", args=["credit-risk"])).content.decode()
    )
    assert f"Approved with conditions: {condition.ref}" in group_page
    decided = client_for(users["viewer"]).get(reverse("registry:queue"), {"tab": "decided"}).content.decode()
    assert f"with conditions {condition.ref}" in decided


def test_a_bad_condition_is_a_400_and_nothing_is_signed(pending: ModelPackage, users: dict[str, Any]) -> None:
    data = {"decision": "approve", "cond_title_0": "Monitor", "cond_owner_0": "", "cond_due_0": _due()}
    response = client_for(users["fair"]).post(url("signoff", pending), data)
    assert response.status_code == 400 and "Condition 1" in response.content.decode()
    response = client_for(users["fair"]).post(url("signoff", pending), {"decision": "approve", "cond_ref": "x1"})
    assert response.status_code == 400
    assert not SignOff.objects.exists() and not Finding.objects.exists()


# --------------------------------------------------------------------------------------------- queue and group page


def test_findings_tab_filters(pending: ModelPackage, users: dict[str, Any]) -> None:
    mine = _finding(pending, users["fair"], "low", title="Mine", owner_id=users["mlead"].pk, owner_email="")
    late = _finding(pending, users["fair"], "medium", title="Late one")
    Finding.objects.filter(pk=late.pk).update(due_date=timezone.localdate() - dt.timedelta(days=3))
    client = client_for(users["mlead"])
    queue = reverse("registry:queue")
    page = client.get(queue, {"tab": "findings"}).content.decode()
    assert "2 open findings" in page and "Mine" in page and "Late one" in page and "Overdue" in page
    page = client.get(queue, {"tab": "findings", "mine": "1"}).content.decode()
    assert "1 open finding you own" in page and "Late one" not in page and mine.ref in page
    page = client.get(queue, {"tab": "findings", "overdue": "1"}).content.decode()
    assert "1 open finding, overdue" in page and late.ref in page and f"{mine.ref} " not in page


def test_group_page_findings_column_with_carry_over(users: dict[str, Any]) -> None:
    v1 = package_in_state("pending", version=1)
    package_in_state("pending", version=2)
    _finding(v1, users["fair"], "critical")
    late = _finding(v1, users["fair"], "low", title="Late")
    Finding.objects.filter(pk=late.pk).update(due_date=timezone.localdate() - dt.timedelta(days=1))
    page = client_for(users["viewer"]).get(reverse("registry:group_detail", args=["credit-risk"])).content.decode()
    assert page.count("2 open · critical") == 2  # v1 and, carried over, v2
    assert page.count("1 overdue") == 2
    v2_page = (
        client_for(users["viewer"]).get(reverse("registry:package_detail", args=["credit-risk", 2])).content.decode()
    )
    assert "carried over from v1" in v2_page


# --------------------------------------------------------------------------------------------- query counts


def _queries(client: Any, target: str, params: dict[str, str] | None = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(target, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_query_counts_stay_constant_as_findings_grow(users: dict[str, Any]) -> None:
    v1 = package_in_state("pending", version=1)
    v2 = package_in_state("pending", version=2)
    client = client_for(users["comp"])
    review, queue, group = (
        url("package_detail", v2),
        reverse("registry:queue"),
        reverse("registry:group_detail", args=["credit-risk"]),
    )
    _finding(v1, users["fair"], "low")
    _finding(v2, users["fair"], "low")
    few = (
        _queries(client, review),
        _queries(client, queue, {"tab": "findings"}),
        _queries(client, group),
        _queries(client, queue, {"tab": "all"}),
    )
    for i in range(12):
        _finding(
            v1 if i % 2 else v2, users["fair"], ("low", "high")[i % 2], title=f"finding {i}", owner_id=users["mlead"].pk
        )
    many = (
        _queries(client, review),
        _queries(client, queue, {"tab": "findings"}),
        _queries(client, group),
        _queries(client, queue, {"tab": "all"}),
    )
    assert few == many, (few, many)
