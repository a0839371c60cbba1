"""The registry listings: groups, a group's versions (filters, keyset pages), one version."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import Bearer, matches_schema
from tests.factories import (
    EvaluationReportFactory,
    MetricFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

GROUPS = "/api/v1/groups/"
PACKAGES = "/api/v1/groups/{group}/packages/"
PACKAGE = "/api/v1/packages/{group}/{version}"


def _all_pages(pipeline: Bearer, path: str, params: dict[str, Any], openapi: dict[str, Any], template: str) -> list:
    items: list[Any] = []
    cursor = None
    for _ in range(50):
        response = pipeline.get(path, {**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        body = matches_schema(openapi, template, response)
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination never ended")


def test_groups_are_listed_by_name_in_keyset_pages(pipeline: Bearer, openapi: dict[str, Any]) -> None:
    for name in ("delta", "alpha", "charlie", "bravo", "echo"):
        group = ModelPackageGroupFactory(name=name)
        ModelPackageFactory(group=group, approval_status="Approved")
        ModelPackageFactory(group=group)
    items = _all_pages(pipeline, GROUPS, {"limit": "2"}, openapi, "/api/v1/groups/")
    assert [g["name"] for g in items] == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert items[0]["versions"] == {"pending": 1, "approved": 1, "rejected": 0}
    assert items[0]["tags"] == {"team": "risk", "cost-centre": "ml-42"} and items[0]["latest_version"]


def test_group_filter_by_source(pipeline: Bearer) -> None:
    ModelPackageGroupFactory(name="a", source=RegistrySourceFactory(name="prod"))
    ModelPackageGroupFactory(name="b", source=RegistrySourceFactory(name="dev"))
    body = pipeline.get(GROUPS, {"source": "dev"}).json()
    assert [g["name"] for g in body["items"]] == ["b"]


def _queries(pipeline: Bearer, path: str, params: dict[str, Any] | None = None) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert pipeline.get(path, params).status_code == 200
    return len(queries)


def test_list_endpoints_cost_the_same_for_3_or_30_rows(pipeline: Bearer) -> None:
    group = ModelPackageGroupFactory(name="many")
    for n in range(1, 4):
        package = ModelPackageFactory(group=group, version=n)
        MetricFactory(report=EvaluationReportFactory(package=package), package=package)
    pipeline.get(GROUPS)  # the first call of the minute also writes the token's last use
    few_groups = _queries(pipeline, GROUPS)
    few_packages = _queries(pipeline, PACKAGES.format(group="many"))
    for n in range(4, 31):
        ModelPackageGroupFactory()
        package = ModelPackageFactory(group=group, version=n)
        MetricFactory(report=EvaluationReportFactory(package=package), package=package)
    assert _queries(pipeline, GROUPS) == few_groups
    assert _queries(pipeline, PACKAGES.format(group="many")) == few_packages


def test_versions_newest_first_with_status_and_since_filters(pipeline: Bearer, openapi: dict[str, Any]) -> None:
    group = ModelPackageGroupFactory(name="fraud-detector")
    base = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    statuses = ["Approved", "Rejected", "Approved", "PendingManualApproval", "Approved"]
    for n, status in enumerate(statuses, start=1):
        ModelPackageFactory(group=group, version=n, approval_status=status, created_at=base + dt.timedelta(days=n))
    template = "/api/v1/groups/{group}/packages/"
    path = PACKAGES.format(group="fraud-detector")
    every = _all_pages(pipeline, path, {"limit": "2"}, openapi, template)
    assert [p["version"] for p in every] == [5, 4, 3, 2, 1]
    approved = _all_pages(pipeline, path, {"status": "approved", "limit": "1"}, openapi, template)
    assert [p["version"] for p in approved] == [5, 3, 1]
    recent = _all_pages(pipeline, path, {"since": "2025-03-04"}, openapi, template)
    assert [p["version"] for p in recent] == [5, 4, 3]
    offset = _all_pages(pipeline, path, {"since": "2025-03-04T01:00:00+02:00"}, openapi, template)
    assert [p["version"] for p in offset] == [5, 4, 3]
    assert every[0]["created_by"] == "pipeline" and every[0]["arn"].endswith("/fraud-detector/5")


def test_one_version(pipeline: Bearer, openapi: dict[str, Any]) -> None:
    package = ModelPackageFactory(group=ModelPackageGroupFactory(name="fraud-detector"), version=7)
    MetricFactory(report=EvaluationReportFactory(package=package), package=package, name="auc", value=0.9)
    MetricFactory(report=EvaluationReportFactory(package=package), package=package, name="weird", value=float("nan"))
    response = pipeline.get(PACKAGE.format(group="fraud-detector", version=7))
    body = matches_schema(openapi, "/api/v1/packages/{group}/{version}", response)
    assert body["version"] == 7 and body["headline_metric"]["name"] == "auc"
    assert {m["name"]: m["value"] for m in body["metrics"]} == {"auc": 0.9, "weird": None}  # JSON has no NaN
    assert body["images"][0]["image_digest"].startswith("sha256:")
    assert body["reproducibility"]["GitCommitSha"] and body["customer_metadata"]["owner"] == "team-risk"
    missing = pipeline.get(PACKAGE.format(group="fraud-detector", version=8))
    assert matches_schema(openapi, "/api/v1/packages/{group}/{version}", missing)["error"] == "package_not_found"


def test_unknown_group_is_404(pipeline: Bearer, openapi: dict[str, Any]) -> None:
    response = pipeline.get(PACKAGES.format(group="nope"))
    assert matches_schema(openapi, "/api/v1/groups/{group}/packages/", response)["error"] == "group_not_found"
