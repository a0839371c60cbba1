"""The group list (filters, htmx live search, pagination) and the group detail page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registry_app.models.registry import ApprovalStatus
from tests.factories import (
    EndpointFactory,
    EndpointVariantFactory,
    MetricFactory,
    ModelCardFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

LIST_URL = reverse("registry:group_list")


def _rows(html: str) -> str:
    """The table body only, so assertions do not match the filter form."""
    return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]


@pytest.fixture
def two_sources() -> tuple:  # type: ignore[type-arg]
    prod = RegistrySourceFactory(name="prod-eu", region="eu-west-1", account_id="111122223333")
    dev = RegistrySourceFactory(name="dev-us", region="us-east-1", account_id="444455556666")
    return prod, dev


def test_group_list_shows_counts_latest_version_owner_and_source(reviewer_client: Client, two_sources) -> None:  # type: ignore[no-untyped-def]
    prod, dev = two_sources
    group = ModelPackageGroupFactory(source=prod, name="credit-risk", description="Retail PD model")
    newest_change = timezone.now() - dt.timedelta(hours=3)
    for version, status in enumerate(
        [ApprovalStatus.APPROVED, ApprovalStatus.PENDING, ApprovalStatus.PENDING, ApprovalStatus.REJECTED], start=1
    ):
        ModelPackageFactory(
            group=group,
            version=version,
            approval_status=status,
            last_modified_at=newest_change - dt.timedelta(days=version),
        )
    # A deleted version counts nowhere and is not "latest".
    ModelPackageFactory(group=group, version=5, approval_status=ApprovalStatus.APPROVED, deleted_at=timezone.now())
    ModelPackageGroupFactory(source=dev, name="churn", owner_account="999988887777")

    response = reviewer_client.get(LIST_URL)

    assert response.status_code == 200
    listing = response.context["listing"]
    row = next(g for g in listing.page if g.name == "credit-risk")
    assert (row.pending_count, row.approved_count, row.rejected_count) == (2, 1, 1)
    assert row.latest_version == 4
    assert row.last_change is not None
    html = response.content.decode()
    assert "Retail PD model" in html
    assert 'href="/packages/credit-risk/4/?source=prod-eu"' in html
    assert "shared from 999988887777" in html
    assert "dev-us" in html and "us-east-1" in html
    assert "<html" in html


def test_last_change_is_the_newest_of_created_and_modified(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    group = ModelPackageGroupFactory(source=registry_source, name="g")
    newest = timezone.now() - dt.timedelta(minutes=5)
    ModelPackageFactory(group=group, version=1, created_at=newest - dt.timedelta(days=3), last_modified_at=None)
    ModelPackageFactory(group=group, version=2, created_at=newest, last_modified_at=None)
    ModelPackageFactory(
        group=group, version=3, created_at=newest - dt.timedelta(days=9), last_modified_at=newest - dt.timedelta(days=1)
    )
    row = next(iter(reviewer_client.get(LIST_URL).context["listing"].page))
    assert row.last_change == newest


def test_deleted_groups_hidden_unless_toggled(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    ModelPackageGroupFactory(source=registry_source, name="live-group")
    ModelPackageGroupFactory(source=registry_source, name="gone-group", deleted_at=timezone.now())

    assert "gone-group" not in _rows(reviewer_client.get(LIST_URL).content.decode())
    shown = _rows(reviewer_client.get(LIST_URL, {"deleted": "1"}).content.decode())
    assert "gone-group" in shown and "live-group" in shown
    assert "is-deleted" in shown


def test_search_matches_name_and_description(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    ModelPackageGroupFactory(source=registry_source, name="credit-risk", description="PD model")
    ModelPackageGroupFactory(source=registry_source, name="churn", description="Telco CREDIT churn")
    ModelPackageGroupFactory(source=registry_source, name="fraud", description="Card fraud")

    names = {g.name for g in reviewer_client.get(LIST_URL, {"q": "credit"}).context["listing"].page}
    assert names == {"credit-risk", "churn"}


def test_filter_by_status_presence_and_source(reviewer_client: Client, two_sources) -> None:  # type: ignore[no-untyped-def]
    prod, dev = two_sources
    pending = ModelPackageGroupFactory(source=prod, name="has-pending")
    ModelPackageFactory(group=pending, approval_status=ApprovalStatus.PENDING)
    approved = ModelPackageGroupFactory(source=prod, name="all-approved")
    ModelPackageFactory(group=approved, approval_status=ApprovalStatus.APPROVED)
    deleted_pending = ModelPackageGroupFactory(source=prod, name="deleted-pending-only")
    ModelPackageFactory(group=deleted_pending, approval_status=ApprovalStatus.PENDING, deleted_at=timezone.now())
    other = ModelPackageGroupFactory(source=dev, name="dev-pending")
    ModelPackageFactory(group=other, approval_status=ApprovalStatus.PENDING)

    def names(**params: str) -> set[str]:
        return {g.name for g in reviewer_client.get(LIST_URL, params).context["listing"].page}

    assert names(status="pending") == {"has-pending", "dev-pending"}
    assert names(status="approved") == {"all-approved"}
    assert names(status="pending", source="prod-eu") == {"has-pending"}
    assert names(source="dev-us") == {"dev-pending"}
    # Nonsense filters are refused with a 400 naming each field, never guessed at.
    refused = reviewer_client.get(LIST_URL, {"status": "bogus", "page": "x"})
    assert refused.status_code == 400
    html = refused.content.decode()
    assert '<span class="err-subject">status</span>' in html and '<span class="err-subject">page</span>' in html


def test_htmx_search_returns_only_the_table_partial(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    ModelPackageGroupFactory(source=registry_source, name="credit-risk")
    ModelPackageGroupFactory(source=registry_source, name="churn")

    response = reviewer_client.get(LIST_URL, {"q": "credit"}, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "<form" not in html
    assert html.lstrip().startswith('<div id="group-table"')
    assert "credit-risk" in html and "churn" not in html
    assert "HX-Request" in response["Vary"]


def test_boosted_and_history_restore_requests_get_the_full_page(reviewer_client: Client) -> None:
    boosted = reviewer_client.get(LIST_URL, headers={"HX-Request": "true", "HX-Boosted": "true"})
    restore = reviewer_client.get(LIST_URL, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in boosted.content.decode()
    assert "<html" in restore.content.decode()


def test_group_list_paginates_by_50_and_keeps_filters(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    for i in range(53):
        ModelPackageGroupFactory(source=registry_source, name=f"model-{i:02d}")

    first = reviewer_client.get(LIST_URL, {"q": "model"})
    second = reviewer_client.get(LIST_URL, {"q": "model", "page": "2"})

    assert len(first.context["listing"].page) == 50
    assert [g.name for g in second.context["listing"].page] == ["model-50", "model-51", "model-52"]
    assert "?q=model&amp;page=2" in first.content.decode()


def test_group_detail_shows_metadata_and_versions(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    group = ModelPackageGroupFactory(
        source=registry_source,
        name="credit-risk",
        description="Retail probability of default",
        tags={"team": "risk", "tier": "1"},
        arn="arn:aws:sagemaker:eu-west-1:111122223333:model-package-group/credit-risk",
    )
    card = ModelCardFactory(source=registry_source, status="PendingReview")
    v1 = ModelPackageFactory(group=group, version=1, approval_status=ApprovalStatus.APPROVED, model_card=card)
    v2 = ModelPackageFactory(group=group, version=2, embedded_card_status="Draft")
    v3 = ModelPackageFactory(group=group, version=3, deleted_at=timezone.now())
    quality = MetricFactory(package=v1, report__package=v1, name="accuracy", value=0.8).report
    MetricFactory(report=quality, name="AUC", value=0.91234)
    MetricFactory(report__package=v2, name="rmse", value=1.5)
    MetricFactory(report__package=v2, name="mse", value=2.25)
    endpoint = EndpointFactory(source=registry_source, name="credit-risk-prod")
    EndpointVariantFactory(endpoint=endpoint, package=v1, variant_name="AllTraffic")
    EndpointVariantFactory(
        endpoint=EndpointFactory(source=registry_source, name="old-endpoint", deleted_at=timezone.now()), package=v2
    )

    response = reviewer_client.get(reverse("registry:group_detail", args=["credit-risk"]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Retail probability of default" in html
    assert group.arn in html
    assert "team" in html and "tier" in html
    rows = {row.package.version: row for row in response.context["detail"].versions}
    assert list(rows) == [3, 2, 1]
    assert rows[1].headline.name == "AUC" and "AUC 0.9123" in html
    assert rows[2].headline.name == "mse" and "mse 2.25" in html
    assert rows[1].card_status == "PendingReview"
    assert rows[2].card_status == "Draft"
    assert rows[1].deployed_to == ["credit-risk-prod"]
    assert rows[2].deployed_to == []  # its only endpoint is gone
    assert rows[3].package.deleted_at is not None
    assert html.count("is-deleted") == 1
    assert f'href="/packages/credit-risk/{v3.version}/?source=prod-eu"' in html


def test_group_detail_source_disambiguates_namesakes(reviewer_client: Client, two_sources) -> None:  # type: ignore[no-untyped-def]
    prod, dev = two_sources
    ModelPackageGroupFactory(source=prod, name="churn", description="prod churn")
    ModelPackageGroupFactory(source=dev, name="churn", description="dev churn")
    url = reverse("registry:group_detail", args=["churn"])

    default = reviewer_client.get(url).content.decode()
    chosen = reviewer_client.get(url, {"source": "prod-eu"}).content.decode()

    assert "dev churn" in default  # "dev-us" sorts first
    assert 'href="/groups/churn/?source=prod-eu"' in default
    assert "prod churn" in chosen
    assert 'href="/groups/churn/?source=dev-us"' in chosen


def test_shared_group_shows_owner_account(reviewer_client: Client, registry_source) -> None:  # type: ignore[no-untyped-def]
    ModelPackageGroupFactory(source=registry_source, name="shared", owner_account="999988887777")
    html = reviewer_client.get(reverse("registry:group_detail", args=["shared"])).content.decode()
    assert "shared from 999988887777" in html
