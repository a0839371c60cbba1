"""Page query counts must not grow with groups, versions, reports, metrics, observations or deployments."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry_app.models import ModelPackage
from tests.factories import ModelPackageGroupFactory, SyncRunFactory

pytestmark = pytest.mark.django_db

# Ceilings keep an eye on the absolute numbers too (2 of them are the session and the user, 1 the
# user's roles for the navigation; the package page is also the review page: policy, sign-offs,
# pushes, the comparison with the approved version, and the Provenance section's training link).
# sync_status: 7, 5 for its audit-evidence section (audit.coverage.evidence_status), 2 for the notification outbox.
# group_detail: 8, plus 2 for the versions' one status (review.statuses: stored review rows, decision pushes),
# plus 6 for the revalidation column (review.revalidation_read.revalidation_clocks, issue 15).
# package_detail: its policy exceptions are 1 query (review.panel).
MAX_QUERIES = {
    "group_list": 6,
    "group_detail": 18,
    "package_detail": 24,
    "sync_status": 14,
}  # group: +6 revalidation, +2 findings


def _count(client: Client, url: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


def _assert_same(small: tuple[int, list[str]], large: tuple[int, list[str]], page: str) -> None:
    assert small[0] == large[0], f"{page}: {small[0]} queries with 2 versions, {large[0]} with 30:\n" + "\n".join(
        large[1]
    )
    assert large[0] <= MAX_QUERIES[page], "\n".join(large[1])


def test_group_list_query_count_is_constant(reviewer_client: Client, build_group: Callable) -> None:
    url = reverse("registry:group_list")
    small_group = build_group("small", 2)
    small = _count(reviewer_client, url)

    build_group("large", 30, source=small_group.source)
    for i in range(60):  # more than a page of groups, some shared from another account
        ModelPackageGroupFactory(source=small_group.source, name=f"extra-{i:02d}", owner_account="999988887777")
    large = _count(reviewer_client, url)
    filtered = _count(reviewer_client, url + "?q=e&status=pending&deleted=1&source=prod-eu&page=2")

    _assert_same(small, large, "group_list")
    assert filtered[0] == large[0]


def test_group_detail_query_count_is_constant(reviewer_client: Client, build_group: Callable) -> None:
    build_group("small", 2)
    build_group("large", 30)

    small = _count(reviewer_client, reverse("registry:group_detail", args=["small"]))
    large = _count(reviewer_client, reverse("registry:group_detail", args=["large"]))

    _assert_same(small, large, "group_detail")


def test_package_detail_query_count_is_constant(reviewer_client: Client, build_group: Callable) -> None:
    # Compare like with like: a pending version whose group has an approved version to compare with
    # (small v3, large v30).
    build_group("small", 3)
    build_group("large", 30)
    # Pile more evidence onto one version of the large group: the page must not notice.
    busy = ModelPackage.objects.get(group__name="large", version=30)
    from tests.factories import EvaluationReportFactory, MetricFactory, PackageObservationFactory

    for slot in ("ModelDataQuality.Statistics", "Bias.PreTrainingReport", "Explainability.Report"):
        report = EvaluationReportFactory(package=busy, slot=slot)
        for i in range(20):
            MetricFactory(report=report, name=f"m{i}")
    for _ in range(70):
        PackageObservationFactory(package=busy)

    small = _count(reviewer_client, reverse("registry:package_detail", args=["small", 3]))
    large = _count(reviewer_client, reverse("registry:package_detail", args=["large", 30]))
    _assert_same(small, large, "package_detail")
    # Rejected versions with an embedded card (v2 / v29) alike.
    assert (
        _count(reviewer_client, reverse("registry:package_detail", args=["small", 2]))[0]
        == _count(reviewer_client, reverse("registry:package_detail", args=["large", 29]))[0]
    )


def test_sync_status_query_count_is_constant(reviewer_client: Client, build_group: Callable) -> None:
    group = build_group("small", 1)
    SyncRunFactory(source=group.source)
    small = _count(reviewer_client, reverse("registry:sync_status"))

    for _ in range(40):
        SyncRunFactory(source=group.source, errors=[{"subject": "x", "message": "y"}])
    for name in ("second", "third"):
        SyncRunFactory(source__name=name)
    large = _count(reviewer_client, reverse("registry:sync_status"))

    assert small[0] == large[0], "\n".join(large[1])
    assert large[0] <= MAX_QUERIES["sync_status"]
