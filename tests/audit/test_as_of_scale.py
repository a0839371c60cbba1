"""/as-of/ at scale and endpoint names in any case: constant queries, index-served lookups.

A production endpoint collects thousands of deployment windows (the benchmark has 2,500 per
endpoint); the answer must take the same queries whether there are three windows or three hundred,
and every lookup by endpoint name must be one that an index serves, whatever the spelling
(SageMaker endpoint names are case-insensitive and endpoint ARNs lower-case them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.db.models import Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry_app.audit import ingest as cloudtrail_ingest
from registry_app.audit.as_of import as_of
from registry_app.audit.as_of_status import status_events_queryset
from registry_app.audit.endpoints import endpoint_overview
from registry_app.audit.timeline import TimelineFilters, endpoint_scope, timeline_page
from registry_app.models import CloudTrailEvent, EndpointDeployment, ModelPackage
from registry_app.models.audit import endpoint_name_is
from registry_app.models.registry import ApprovalStatus
from tests.audit.builders import at, cloudtrail, deployment, status_call
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory, RegistrySourceFactory

pytestmark = pytest.mark.django_db

ENDPOINT = "Credit-Prod"  # as the deployer spelled it


@pytest.fixture
def versions(db: None) -> list[ModelPackage]:
    source = RegistrySourceFactory(name="prod-eu")
    group = ModelPackageGroupFactory(source=source, name="credit-risk")
    packages = [
        ModelPackageFactory(group=group, version=v, approval_status=ApprovalStatus.APPROVED) for v in range(1, 4)
    ]
    for package in packages:
        status_call(package, "Approved", at(-10 + package.version))
    return packages


def add_windows(packages: list[ModelPackage], count: int, *, start: dt.datetime) -> dt.datetime:
    """``count`` back-to-back hour-long windows cycling through ``packages``; returns the end."""
    rows = []
    for i in range(count):
        package = packages[i % len(packages)]
        begin = start + dt.timedelta(hours=i)
        rows.append(
            EndpointDeployment(
                endpoint_name=ENDPOINT,
                variant_name="AllTraffic",
                config_name=f"cfg-{i}",
                model_name=f"model-{i}",
                package_arn=package.arn,
                package=package,
                weight=1.0,
                started_at=begin,
                ended_at=begin + dt.timedelta(hours=1),
                evidence={"events": {"deploy": f"evt-{i}"}},
            )
        )
    EndpointDeployment.objects.bulk_create(rows)
    return start + dt.timedelta(hours=count)


def _as_of_queries(client: Client, name: str, when: dt.datetime) -> int:
    url = reverse("registry:as_of") + f"?endpoint={name}&at={when:%Y-%m-%dT%H:%M}"
    client.get(url)  # warm: session, permissions
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    assert "credit-risk" in response.content.decode()
    return len(ctx.captured_queries)


def test_as_of_queries_stay_constant_as_deployments_grow(
    versions: list[ModelPackage], compliance_client: Client, django_assert_max_num_queries: Any
) -> None:
    end = add_windows(versions, 3, start=at(0))
    few = _as_of_queries(compliance_client, ENDPOINT, at(1, minutes=30))

    add_windows(versions, 300, start=end)
    many = _as_of_queries(compliance_client, ENDPOINT, at(1, minutes=30))
    late = _as_of_queries(compliance_client, ENDPOINT, end + dt.timedelta(hours=250, minutes=30))

    assert many == few == late
    with django_assert_max_num_queries(few):
        answer = as_of(ENDPOINT, end + dt.timedelta(hours=250, minutes=30))
    # 250 hours into the second batch: its window 250 (of the cycle v1, v2, v3: v2)
    (variant,) = answer.variants
    assert variant.deployment.evidence == {"events": {"deploy": "evt-250"}}
    assert variant.package.package == versions[250 % 3]


@pytest.mark.parametrize("asked", ["Credit-Prod", "credit-prod", "CREDIT-PROD", "cReDiT-pRoD"])
def test_endpoint_names_match_in_any_case(versions: list[ModelPackage], asked: str) -> None:
    v1 = versions[0]
    deployment(ENDPOINT, v1, at(0), at(5))
    spelled = cloudtrail("UpdateEndpoint", at(0), endpoint_name=ENDPOINT)
    from_arn = cloudtrail("DeleteEndpoint", at(5), endpoint_name=ENDPOINT.lower())  # ARNs lower-case names
    cloudtrail("UpdateEndpoint", at(1), endpoint_name="credit-prod-shadow")  # a prefix is no match

    answer = as_of(asked, at(1))
    assert [v.package.package for v in answer.variants] == [v1]

    timeline = timeline_page(endpoint_scope(asked), TimelineFilters(kinds=("cloudtrail",)))
    assert {item.raw["eventID"] for item in timeline.items} == {spelled.event_id, from_arn.event_id}

    overview = endpoint_overview(asked)
    assert overview is not None and [d.package for d in overview.history] == [v1]

    after = as_of(asked, at(6))  # after the DeleteEndpoint (lower-cased spelling)
    assert after.variants == [] and after.nothing_deployed


def _plan(qs: Any) -> str:
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # can an index serve it at all?
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def test_endpoint_lookups_are_served_by_the_lower_case_indexes(versions: list[ModelPackage]) -> None:
    add_windows(versions, 30, start=at(0))
    cloudtrail("UpdateEndpoint", at(0), endpoint_name=ENDPOINT)
    when = at(10, minutes=30)
    windows = (
        EndpointDeployment.objects.filter(endpoint_name_is("CREDIT-PROD"), started_at__lte=when)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=when))
        .order_by("-started_at")
    )
    events = CloudTrailEvent.objects.filter(endpoint_name_is("credit-prod")).order_by("-event_time")[:50]

    assert "deploy_endpoint_start" in _plan(windows)
    assert "ct_endpoint_time" in _plan(events)
    assert [w.config_name for w in windows] == ["cfg-10"]


def test_status_history_walks_the_package_indexes_with_or_without_statistics(
    versions: list[ModelPackage], settings: Any
) -> None:
    """A few event names cover most of the table: the status history must be found through the
    package indexes, never by walking ct_name_time through every status call of every package, before
    the planner has statistics (SQLite's default guesses) and after the ingest refreshed them."""
    source = versions[0].source
    group = ModelPackageGroupFactory(source=source, name="busy")
    others = [ModelPackageFactory(group=group, version=v) for v in range(1, 201)]
    CloudTrailEvent.objects.bulk_create(
        CloudTrailEvent(
            event_id=f"bulk-{i}",
            via=CloudTrailEvent.Via.S3,
            event_time=at(i / 60),
            event_name="UpdateModelPackage" if i % 3 else "CreateModelPackage",
            resource_name=others[i % 200].arn,
            package=others[i % 200],
            raw={"eventID": f"bulk-{i}"},
        )
        for i in range(4000)
    )
    wanted = versions[:2]
    plans = [_plan(status_events_queryset(wanted))]
    settings.AUDIT_ANALYZE_AFTER_ROWS = 1000
    cloudtrail_ingest.analyze_events_table(4000)
    plans.append(_plan(status_events_queryset(wanted)))

    for plan in plans:
        assert "ct_name_time" not in plan
        assert "ct_package_time" in plan and "ct_resource_time" in plan
    assert [e.package for e in status_events_queryset(wanted)] == wanted
