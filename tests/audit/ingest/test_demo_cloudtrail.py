"""The demo seed's CloudTrail logs, ingested end to end: links, people, and the deployment history."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import boto3
import pytest

from registry_app.audit.deployments import deployments_at
from registry_app.audit.ingest import ingest_source
from registry_app.devtools.demo_seed import CLOUDTRAIL_BUCKET, SeedSummary, seed_registry
from registry_app.mirror.execute import sync_source
from registry_app.models import CloudTrailEvent, EndpointDeployment, RegistrySource, SyncRun
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


@pytest.fixture
def seeded(aws: None) -> SeedSummary:
    return seed_registry(region="eu-west-1", second_region="us-east-1", bucket="acme-ml-artifacts", now=NOW)


def test_seed_writes_gzip_log_files_in_the_documented_layout(seeded: SeedSummary) -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=CLOUDTRAIL_BUCKET)
            for o in p.get("Contents", [])]  # fmt: skip
    logs = [k for k in keys if "/CloudTrail/" in k]
    digests = [k for k in keys if "/CloudTrail-Digest/" in k]
    assert len(logs) == seeded.cloudtrail_files and digests
    assert {k.split("/")[3] for k in logs} == {"eu-west-1", "us-east-1"}
    assert all(k.startswith(f"AWSLogs/{seeded.account_id}/CloudTrail/") and k.endswith(".json.gz") for k in logs)
    times = []
    for key in logs:
        from registry_app.audit.trail_files import parse_log_file

        records = parse_log_file(s3.get_object(Bucket=CLOUDTRAIL_BUCKET, Key=key)["Body"].read())
        times += [dt.datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00")) for rec in records]
    assert len(times) == seeded.cloudtrail_events
    assert NOW - dt.timedelta(days=181) < min(times) < NOW - dt.timedelta(days=170)
    assert max(times) < NOW
    assert seeded.deployment_steps == {"credit-default-prod": 5, "fraud-detector-live": 3, "demand-forecast-prod": 2}
    assert any("cloudtrail:" in line for line in seeded.lines())


def test_demo_history_ingests_links_people_and_deployments(seeded: SeedSummary) -> None:
    users = {name: UserFactory(username=name) for name in ("mlead", "fairness", "compliance")}
    sources = [
        RegistrySource.objects.create(name=name, region=region, cloudtrail_bucket=CLOUDTRAIL_BUCKET)
        for name, region in (("acme-eu", "eu-west-1"), ("acme-us", "us-east-1"))
    ]
    for source in sources:
        # PARTIAL: the seed has a broken and a missing report on purpose.
        assert sync_source(source, mode=SyncRun.Mode.FULL).status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)
    results = [ingest_source(s, lookup=False, since=(NOW - dt.timedelta(days=200)).date()) for s in sources]

    assert all(not r.errors for r in results), [r.errors for r in results]
    # The demo trail's signed digests vouch for every log file (docs/audit-anchor.md, section 2).
    from registry_app.models import TrailDigest, TrailLogFile

    assert set(TrailLogFile.objects.values_list("state", flat=True)) == {"validated"}
    assert set(TrailDigest.objects.values_list("state", flat=True)) == {"valid"}
    assert not TrailDigest.objects.filter(chain="broken").exists()
    stored = CloudTrailEvent.objects.count()
    assert stored == sum(r.s3.inserted for r in results)
    assert stored < seeded.cloudtrail_events  # read-only noise dropped
    assert not CloudTrailEvent.objects.filter(event_name="DescribeModelPackage").exists()
    names = Counter(CloudTrailEvent.objects.values_list("event_name", flat=True))
    assert names["CreateModelPackageGroup"] == 6 and names["CreateModelPackage"] == seeded.package_count
    assert names["AssumeRole"] > 0 and names["UpdateModelCard"] > 0

    # Every package event landed on its package; approvals carry the person who made them.
    package_events = CloudTrailEvent.objects.filter(resource_type="package")
    assert not package_events.filter(package__isnull=True).exists()
    approvals = CloudTrailEvent.objects.filter(event_name="UpdateModelPackage", error_code="")
    assert {e.actor_name for e in approvals} >= {"mlead", "fairness", "compliance"}
    assert all(e.user == users[e.actor_name] for e in approvals if e.actor_name in users)
    denied = CloudTrailEvent.objects.get(error_code="AccessDenied")
    assert denied.actor_name == "vera-novak" and denied.user is None
    registered = CloudTrailEvent.objects.filter(event_name="CreateModelPackage").first()
    assert registered is not None
    assert registered.actor_name == "AmazonSageMaker-PipelineExecutionRole/SageMaker"

    # Deployment history: v2 → v3 → v5 → rollback to v3 → v5 for credit-default-prod, ending on the mirror's state.
    credit = [
        (d.package.version if d.package else None, d.ended_at is None)
        for d in EndpointDeployment.objects.filter(endpoint_name="credit-default-prod")
        .select_related("package")
        .order_by("started_at")
    ]
    assert credit == [(2, False), (3, False), (5, False), (3, False), (5, True)]
    for row in EndpointDeployment.objects.all():
        assert "missing" not in row.evidence and "mirror_disagrees" not in row.evidence, row.evidence
    live = deployments_at("fraud-detector-live", NOW)
    assert sorted((d.variant_name, d.package.version, d.weight) for d in live if d.package) == [
        ("Challenger", 4, 0.1),
        ("Champion", 3, 0.9),
    ]
    assert [d.package.version for d in deployments_at("demand-forecast-prod", NOW) if d.package] == [3]
    rollback = NOW - dt.timedelta(days=30)
    assert [d.package.version for d in deployments_at("credit-default-prod", rollback) if d.package] == [3]
    assert EndpointDeployment.objects.filter(endpoint_name="demand-forecast-prod", source=sources[1]).exists()


def test_seeding_twice_reports_the_planned_logs(seeded: SeedSummary) -> None:
    again: Any = seed_registry(region="eu-west-1", second_region="us-east-1", bucket="acme-ml-artifacts", now=NOW)
    assert again.skipped
    assert (again.cloudtrail_files, again.cloudtrail_events) == (seeded.cloudtrail_files, seeded.cloudtrail_events)
