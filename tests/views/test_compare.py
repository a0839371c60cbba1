"""Versions side by side: /groups/<group>/compare/?versions=3,5 — validation, permissions, differences,
escaping and a constant query count."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry_app.models import ApprovalPolicy, ModelPackage, ModelPackageGroup
from tests.factories import EvaluationReportFactory, MetricFactory, ModelPackageFactory
from tests.hostile import audit_html
from tests.views.test_review_support import XSS, client_for, make_user, package_in_state, persona_user

pytestmark = pytest.mark.django_db

QUERIES = 7  # session, user, nav badges (context processor), group, packages, metrics, policy rows


def compare_url(group: str = "credit-risk", query: str = "versions=1,2") -> str:
    return reverse("registry:group_compare", args=[group]) + ("?" + query if query else "")


def versions(count: int, group_name: str = "credit-risk") -> list[ModelPackage]:
    made = []
    for v in range(1, count + 1):
        package = package_in_state("approved" if v == 1 else "pending", group_name=group_name, version=v)
        package.reports.get().metrics.filter(name="auc").update(value=0.80 + v / 100)
        MetricFactory(report=package.reports.get(), name="rmse", value=3.0, kind="regression")
        made.append(package)
    return made


def get(user: Any, url: str) -> Any:
    return client_for(user).get(url)


def rows(body: str) -> dict[str, str]:
    """Each table row by its header cell's text."""
    found = {}
    for match in re.finditer(r"<tr( class=\"differs\")?>\s*<th scope=\"row\"[^>]*>(.*?)</th>(.*?)</tr>", body, re.S):
        label = html.unescape(re.sub(r"<[^>]+>", "", match.group(2)).replace("differs", "").strip())
        found[label] = match.group(0)
    return found


def test_two_versions_side_by_side_with_differences_marked() -> None:
    v1, v2 = versions(2)
    ModelPackage.objects.filter(pk=v2.pk).update(
        inference_specification={"Containers": [{"Image": "repo/model:2"}], "SupportedContentTypes": ["text/csv"]}
    )
    response = get(persona_user("viewer"), compare_url())
    assert response.status_code == 200
    body = response.content.decode()
    table = rows(body)
    auc = table["auc"]
    assert 'class="differs"' in auc and '<span class="diff-flag">differs</span>' in auc
    assert "0.81" in auc and "0.82" in auc
    assert '<span class="delta delta-better"><span aria-hidden="true">↑ +0.01 better</span>' in auc
    assert 'class="differs"' not in table["rmse"]  # the same in both: not highlighted
    image = table["Image"]
    assert 'class="differs"' in image and "cell-changed" in image and "repo/model:2" in image
    assert "Request content types" in table and "text/csv" in table["Request content types"]
    assert "Commit" in table and "GitCommitSha" in table  # reproducibility: metadata properties and keys
    assert re.search(r"<strong>\d+</strong> rows? differ", body)
    assert f'href="{reverse("registry:package_detail", args=["credit-risk", 1])}?source=prod-eu"' in body


def test_policy_gates_per_version() -> None:
    versions(2)
    ApprovalPolicy.objects.create(
        name="strict", is_default=True, spec={"name": "strict", "gates": ["auc >= 0.815"], "sla_hours": 48}
    )
    body = get(persona_user("viewer"), compare_url()).content.decode()
    gate = rows(body)["auc >= 0.815"]
    assert 'class="differs"' in gate
    assert re.search(r"badge-rejected\">fail</span> 0.81.*badge-approved\">pass</span> 0.82", gate, re.S)


def test_repeated_and_comma_separated_versions_mean_the_same() -> None:
    versions(3)
    user = persona_user("viewer")
    one = get(user, compare_url(query="versions=3,1")).content.decode()
    two = get(user, compare_url(query="versions=1&versions=3")).content.decode()
    strip = re.compile(r'"X-CSRFToken": "[^"]+"|value="[A-Za-z0-9]{64}"')
    assert strip.sub("", one) == strip.sub("", two)
    assert 'Compare versions <span class="version">v1 · v3</span>' in one


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "versions"),
        ("versions=2", "versions"),
        ("versions=2,2", "versions"),
        ("versions=1,abc", "versions"),
        ("versions=1,-2", "versions"),
        ("versions=1,2,3,4,5,6,7", "versions"),
        ("versions=1,99", "versions"),  # no such version in this group
        ("versions=1," + "9" * 300, "versions"),
        ("versions=1,%00", "versions"),
        ("versions=1,2&source=bad%20name", "source"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(query: str, field: str) -> None:
    versions(2)
    response = get(persona_user("viewer"), compare_url(query=query))
    assert response.status_code == 400
    body = response.content.decode()
    assert f'<span class="err-subject">{field}</span>' in body
    if field == "versions" and "%00" not in query:  # not a dead end: back to the checkboxes (a NUL is refused earlier)
        assert 'href="/groups/credit-risk/?source=prod-eu#versions"' in body


def test_at_most_six_versions() -> None:
    versions(6)
    assert get(persona_user("viewer"), compare_url(query="versions=1,2,3,4,5,6")).status_code == 200


@pytest.mark.parametrize("persona", ["anonymous", "inactive", "nobody", "viewer", "comp"])
def test_the_same_permissions_as_the_group_page(persona: str) -> None:
    versions(2)
    if persona == "anonymous":
        user = None
    elif persona == "inactive":
        user = make_user("gone", "viewer")
        user.is_active = False
        user.save()
    else:
        user = persona_user(persona)
    group_page = client_for(user).get(reverse("registry:group_detail", args=["credit-risk"]))
    compare = client_for(user).get(compare_url())
    assert compare.status_code == group_page.status_code
    if persona == "anonymous":
        assert compare.status_code == 302 and "/login" in compare["Location"]


def test_unknown_group_is_a_404() -> None:
    assert get(persona_user("viewer"), compare_url(group="nope")).status_code == 404


def test_query_count_is_constant(django_assert_num_queries: Any) -> None:
    versions(6)
    versions(2, group_name="small")
    for n in range(20):  # a bigger group, and more metrics per version
        package = ModelPackageFactory(group=ModelPackageGroup.objects.get(name="credit-risk"), version=100 + n)
        report = EvaluationReportFactory(package=package, slot="ModelQuality.Statistics")
        MetricFactory(report=report, name="f1", value=0.5)
    client = client_for(persona_user("viewer"))
    for group, query in [
        ("small", "versions=1,2"),
        ("credit-risk", "versions=1,2"),
        ("credit-risk", "versions=1,2,3,4,5,6"),
    ]:
        with django_assert_num_queries(QUERIES):
            assert client.get(compare_url(group=group, query=query)).status_code == 200


def test_registry_text_is_escaped() -> None:
    v1, v2 = versions(2)
    MetricFactory(report=v2.reports.get(), name=XSS, value=1.0, facet=XSS)
    ModelPackage.objects.filter(pk=v2.pk).update(
        description=XSS,
        metadata_properties={"Repository": XSS, XSS: XSS},
        customer_metadata={"GitCommitSha": XSS},
        inference_specification={"Containers": [{"Image": XSS}], "SupportedContentTypes": [XSS]},
        embedded_card_content={"model_overview": {"model_description": XSS}},
    )
    body = get(persona_user("viewer"), compare_url()).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert body.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    assert audit_html(body).findings == []


def test_group_page_offers_the_comparison_and_a_trend() -> None:
    versions(3)
    body = get(persona_user("viewer"), reverse("registry:group_detail", args=["credit-risk"])).content.decode()
    form = re.search(r'<form method="get" action="([^"]+)" id="compare-form"', body)
    assert form and form.group(1) == reverse("registry:group_compare", args=["credit-risk"])
    boxes = re.findall(r'<input type="checkbox" name="versions" value="(\d+)" form="compare-form"', body)
    assert sorted(boxes) == ["1", "2", "3"]
    assert "<title>credit-risk · SageMaker Model Registry</title>" in body  # the chart stays in its section
    trend = body[body.index('id="trend"') :]
    assert '<svg class="chart chart-trend"' in trend and "v1 ✓" in trend  # v1 is the approved one


def test_group_page_trend_costs_no_query() -> None:
    versions(2, group_name="small")
    versions(12, group_name="large")
    client = client_for(persona_user("viewer"))
    counts = []
    for name in ("small", "large"):
        url = reverse("registry:group_detail", args=[name])
        client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            body = client.get(url).content.decode()
        assert body.count("<polyline") == 2  # auc and rmse, each on its own chart
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
