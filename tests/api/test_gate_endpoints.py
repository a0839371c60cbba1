"""The deploy-gate operations over HTTP: what a pipeline gets back, what is audited, what it costs."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry_app.models import AuditLogEntry
from tests.api.conftest import Bearer, matches_schema
from tests.factories import ModelPackageGroupFactory
from tests.gate.builders import approve_outside, approve_via_dashboard, change_content, package_with_metrics

pytestmark = pytest.mark.django_db

LATEST = "/api/v1/groups/{group}/approved/latest"
CHECK = "/api/v1/packages/check"


@pytest.fixture
def fraud(personas: dict[str, Any]) -> dict[int, Any]:
    """fraud-detector: v1 approved by the dashboard, v2 changed after review, v3 approved outside."""
    group = ModelPackageGroupFactory(name="fraud-detector")
    versions = {n: package_with_metrics(group, version=n) for n in (1, 2, 3)}
    approve_via_dashboard(versions[1], personas)
    approve_via_dashboard(versions[2], personas)
    change_content(versions[2])
    approve_outside(versions[3], actor="dave", role="DataScientist")
    return versions


def test_latest_returns_the_evidence_and_what_it_skipped(
    pipeline: Bearer, fraud: dict[int, Any], openapi: dict[str, Any]
) -> None:
    response = pipeline.get(LATEST.format(group="fraud-detector"))
    assert response.status_code == 200, response.content
    body = matches_schema(openapi, "/api/v1/groups/{group}/approved/latest", response)
    assert (body["version"], body["arn"]) == (1, fraud[1].arn)
    assert body["approved_automatically"] is False and body["approved_at"]
    evidence = body["evidence"]
    assert evidence["approved_via"] == "dashboard" and evidence["policy"] == "default"
    assert [(s["user"], s["role"]) for s in evidence["signoffs"]] == [
        ("mlead", "ml-lead"),
        ("fair", "fairness"),
        ("comp", "compliance"),
    ]
    assert evidence["reviewed_fingerprint"] == evidence["current_fingerprint"]
    assert evidence["cloudtrail_event_id"] and evidence["training_job"]
    assert evidence["metrics"] == [
        {"name": "auc", "value": 0.91, "facet": "", "kind": "binary_classification", "stage": ""}
    ]
    assert [(k["version"], [r["code"] for r in k["reasons"]]) for k in body["skipped"]] == [
        (3, ["approved_outside"]),
        (2, ["content_changed"]),
    ]
    entry = AuditLogEntry.objects.filter(action="api.call").get()
    assert entry.actor_name == "svc-deploy-pipeline" and entry.package_id == fraud[1].pk
    assert entry.after["token"] == "deploy-pipeline" and entry.after["status"] == 200
    assert entry.after["deployable"] is True and entry.after["skipped"] == [3, 2]
    assert "deploy-pipeline" in entry.message


def test_latest_with_nothing_deployable_is_a_404_listing_the_skipped(
    pipeline: Bearer, personas: dict[str, Any], openapi: dict[str, Any]
) -> None:
    group = ModelPackageGroupFactory(name="churn")
    approve_outside(package_with_metrics(group, version=1))
    response = pipeline.get(LATEST.format(group="churn"))
    assert response.status_code == 404
    body = matches_schema(openapi, "/api/v1/groups/{group}/approved/latest", response)
    assert body["error"] == "no_deployable_version" and body["skipped"][0]["version"] == 1
    missing = pipeline.get(LATEST.format(group="no-such-group"))
    assert matches_schema(openapi, "/api/v1/groups/{group}/approved/latest", missing)["error"] == "group_not_found"
    assert AuditLogEntry.objects.filter(action="api.call").count() == 2


def test_latest_by_source(pipeline: Bearer, fraud: dict[int, Any]) -> None:
    source = fraud[1].source.name
    assert pipeline.get(LATEST.format(group="fraud-detector"), {"source": source}).status_code == 200
    assert pipeline.get(LATEST.format(group="fraud-detector"), {"source": "elsewhere"}).status_code == 404


def test_check_answers_deployable_or_not_with_reasons(
    pipeline: Bearer, fraud: dict[int, Any], openapi: dict[str, Any]
) -> None:
    ok = matches_schema(openapi, "/api/v1/packages/check", pipeline.get(CHECK, {"arn": fraud[1].arn}))
    assert ok["deployable"] is True and ok["reasons"] == [] and ok["evidence"]["version"] == 1
    changed = matches_schema(openapi, "/api/v1/packages/check", pipeline.get(CHECK, {"arn": fraud[2].arn}))
    assert changed["deployable"] is False
    assert [r["code"] for r in changed["reasons"]] == ["content_changed"]
    assert changed["evidence"]["changed_since_review"] == ["description"]
    upper = fraud[1].arn.replace("fraud-detector", "FRAUD-DETECTOR")
    assert pipeline.get(CHECK, {"arn": upper}).json()["deployable"] is True  # ARNs name resources in lower case
    unknown = pipeline.get(CHECK, {"arn": fraud[1].arn.replace("/1", "/99")})
    assert unknown.status_code == 404 and unknown.json()["error"] == "package_not_found"
    assert pipeline.get(CHECK).json()["error"] == "invalid_parameter"
    entries = list(AuditLogEntry.objects.filter(action="api.call").order_by("seq"))
    assert [e.after["status"] for e in entries] == [200, 200, 200, 404, 400]
    assert entries[1].after["reasons"] == ["content_changed"] and entries[1].package_id == fraud[2].pk


def _latest_queries(pipeline: Bearer, group: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert pipeline.get(LATEST.format(group=group)).status_code == 200
    return len(queries)


def test_latest_costs_the_same_whatever_the_number_of_versions(pipeline: Bearer, personas: dict[str, Any]) -> None:
    small, large = ModelPackageGroupFactory(name="small"), ModelPackageGroupFactory(name="large")
    for group, count in ((small, 2), (large, 8)):
        for n in range(1, count + 1):
            approve_via_dashboard(package_with_metrics(group, version=n), personas)
        for n in range(2, count + 1):  # every version but the first is refused, so all are examined
            approve_outside(package_with_metrics(group, version=100 + n))
    pipeline.get("/api/v1/groups/")  # the first call of the minute also writes last_used_at
    assert _latest_queries(pipeline, "small") == _latest_queries(pipeline, "large")
