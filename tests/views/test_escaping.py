"""Registry-supplied text is data, never markup: every place it appears is escaped."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import (
    EvaluationReportFactory,
    MetricFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    PackageObservationFactory,
    SyncRunFactory,
)

pytestmark = pytest.mark.django_db

XSS = "<script>alert(1)</script>"


def assert_escaped(html: str) -> None:
    assert "&lt;script&gt;" in html
    assert "<script>alert(1)" not in html


@pytest.fixture
def hostile_package(registry_source):  # type: ignore[no-untyped-def]
    group = ModelPackageGroupFactory(
        source=registry_source, name="credit-risk", description=f"desc {XSS}", tags={f"k{XSS}": f"v{XSS}"}
    )
    package = ModelPackageFactory(
        group=group,
        version=1,
        description=f"pkg {XSS}",
        approval_description=f"approved {XSS}",
        customer_metadata={"TrainingDataS3VersionId": XSS, f"key{XSS}": XSS},
        metadata_properties={"Repository": XSS},
        embedded_card_status="Draft",
        embedded_card_content={
            "intended_uses": {"purpose_of_model": f"purpose {XSS}", "risk_rating": "High"},
            "additional_information": {"custom_details": {XSS: XSS}},
        },
        raw={"ModelPackageDescription": XSS},
    )
    report = EvaluationReportFactory(package=package, error=XSS, status="parse_error", slot=f"slot{XSS}")
    MetricFactory(report=report, name=f"auc{XSS}", facet=XSS)
    MetricFactory(report=report, name="auc", value=0.9)
    PackageObservationFactory(package=package, changes={XSS: [XSS, XSS]})
    return package


def test_group_list_escapes_description(reviewer_client: Client, hostile_package) -> None:  # type: ignore[no-untyped-def]
    html = reviewer_client.get(reverse("registry:group_list")).content.decode()
    assert "desc &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_escaped(html)
    partial = reviewer_client.get(reverse("registry:group_list"), {"q": XSS}, headers={"HX-Request": "true"})
    assert_escaped(partial.content.decode())


def test_group_detail_escapes_description_and_tags(reviewer_client: Client, hostile_package) -> None:  # type: ignore[no-untyped-def]
    html = reviewer_client.get(reverse("registry:group_detail", args=["credit-risk"])).content.decode()
    assert "k&lt;script&gt;alert(1)&lt;/script&gt;" in html  # tag key
    assert "v&lt;script&gt;alert(1)&lt;/script&gt;" in html  # tag value
    assert_escaped(html)


def test_package_page_escapes_card_metrics_metadata_and_raw(reviewer_client: Client, hostile_package) -> None:  # type: ignore[no-untyped-def]
    html = reviewer_client.get(reverse("registry:package_detail", args=["credit-risk", 1])).content.decode()
    assert "purpose &lt;script&gt;" in html  # card field
    assert "auc&lt;script&gt;" in html  # metric name
    assert "key&lt;script&gt;" in html  # customer metadata key
    assert "&quot;ModelPackageDescription&quot;: &quot;&lt;script&gt;" in html  # raw JSON
    assert_escaped(html)


def test_sync_page_escapes_run_errors(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    SyncRunFactory(
        source=registry_source, status="partial", errors=[{"subject": XSS, "message": XSS}, XSS], counts={XSS: 1}
    )
    html = reviewer_client.get(reverse("registry:sync_status")).content.decode()
    assert_escaped(html)
