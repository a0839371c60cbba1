"""The sync against moto: first sync, incremental, idempotence, deletions, bad input, AssumeRole."""

from __future__ import annotations

import boto3
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import CallStats, SourceConfig
from registry_app.mirror import aws_requests
from registry_app.mirror.execute import execute_run, sync_source
from registry_app.mirror.leases import acquire_lock, release_lock
from registry_app.models import EvaluationReport, Metric, ModelPackage, ModelPackageGroup, PackageObservation, SyncRun
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db


def mark_synced(source) -> None:  # type: ignore[no-untyped-def]
    """As after a first (full) sync: later runs keep the mode they were asked for."""
    source.__class__.objects.filter(pk=source.pk).update(first_synced_at=timezone.now())
    source.refresh_from_db()


@pytest.fixture
def registry(aws):  # type: ignore[no-untyped-def]
    sm, s3 = h.clients()
    h.make_bucket(s3)
    good = h.put_json(s3, "credit/1/evaluation.json", h.BINARY_REPORT)
    reg = h.put_json(s3, "house/1/evaluation.json", h.REGRESSION_REPORT)
    broken = h.put_json(s3, "credit/2/evaluation.json", "{not json")
    h.create_group(sm, "credit-risk", "Retail PD model", {"RiskTier": "High"})
    h.create_group(sm, "house-price", "Regression")
    arns = {
        "c1": h.create_package(sm, "credit-risk", status="Approved", report_uri=good),
        "c2": h.create_package(sm, "credit-risk", report_uri=broken),
        "c3": h.create_package(sm, "credit-risk", report_uri="s3://ml-artifacts/missing/evaluation.json"),
        "h1": h.create_package(sm, "house-price", status="Rejected", report_uri=reg),
    }
    return sm, s3, arns


def test_first_full_sync_mirrors_groups_packages_reports(registry, source) -> None:  # type: ignore[no-untyped-def]
    sm, _, arns = registry
    run = sync_source(source, mode=SyncRun.Mode.FULL)
    assert run.status == SyncRun.Status.PARTIAL, run.error  # the broken and missing reports are errors
    assert ModelPackageGroup.objects.count() == 2
    group = ModelPackageGroup.objects.get(name="credit-risk")
    assert group.tags == {"RiskTier": "High"}
    assert group.owner_account == "123456789012"
    assert ModelPackage.objects.count() == 4
    c1 = ModelPackage.objects.get(arn=arns["c1"])
    assert (c1.version, c1.approval_status) == (1, "Approved")
    assert c1.images[0]["ImageDigest"].startswith("sha256:")
    auc = Metric.objects.get(package=c1, name="auc")
    assert auc.value == pytest.approx(0.91)
    report = c1.reports.get()
    assert report.status == EvaluationReport.Status.OK
    assert report.confusion_matrix is not None
    # One bad report does not stop the others; each error is stored and visible.
    assert ModelPackage.objects.get(arn=arns["c2"]).reports.get().status == EvaluationReport.Status.PARSE_ERROR
    missing = ModelPackage.objects.get(arn=arns["c3"]).reports.get()
    assert missing.status == EvaluationReport.Status.FETCH_ERROR
    assert "NoSuchKey" in missing.error
    assert Metric.objects.filter(package__arn=arns["h1"], name="mse").exists()
    assert PackageObservation.objects.filter(change="created").count() == 4
    assert run.aws_calls["GetObject"] == 4
    assert len(run.errors) == 2
    assert source.__class__.objects.get(pk=source.pk).account_id == "123456789012"


def test_incremental_picks_up_approval_made_in_registry(registry, source) -> None:  # type: ignore[no-untyped-def]
    sm, _, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    h.set_status(sm, arns["c3"], "Approved", "approved in Studio")
    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    pkg = ModelPackage.objects.get(arn=arns["c3"])
    assert pkg.approval_status == "Approved"
    assert pkg.approval_description == "approved in Studio"
    obs = pkg.observations.filter(change="updated").get()
    assert obs.changes["approval_status"] == ["PendingManualApproval", "Approved"]
    # Search from the watermark brought the changed record (a full one: no describe); its unchanged
    # report was not fetched again.
    assert run.aws_calls == {"ListModelPackages": 1, "Search": 1}


def test_no_change_sync_writes_nothing(registry, source) -> None:  # type: ignore[no-untyped-def]
    sync_source(source, mode=SyncRun.Mode.FULL)
    for mode in (SyncRun.Mode.INCREMENTAL, SyncRun.Mode.FULL):
        before = PackageObservation.objects.count()
        with CaptureQueriesContext(connection) as ctx:
            run = sync_source(source, mode=mode)
        writes = [
            q["sql"]
            for q in ctx.captured_queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
            and "registry_app_syncrun" not in q["sql"]
            and "registry_app_registrysource" not in q["sql"]  # the lock
        ]
        assert writes == [], (mode, writes)
        assert PackageObservation.objects.count() == before
        if mode == SyncRun.Mode.INCREMENTAL:
            assert run.aws_calls == {"ListModelPackages": 1, "Search": 1}
        else:
            assert "DescribeModelPackage" not in run.aws_calls
            # Only the two reports that failed to fetch last time are retried on a full sync.
            assert run.aws_calls.get("GetObject") == 1


def test_deleted_package_is_kept_and_marked(registry, source) -> None:  # type: ignore[no-untyped-def]
    _, _, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    h.delete_package_in_moto(arns["h1"])
    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    pkg = ModelPackage.objects.get(arn=arns["h1"])
    assert pkg.deleted_at is not None
    assert pkg.observations.filter(change="deleted").count() == 1
    assert run.counts["packages_deleted"] == 1
    # A second sync does not mark it again.
    sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    assert pkg.observations.filter(change="deleted").count() == 1


def test_listing_failure_never_marks_packages_deleted(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from registry_app.aws.errors import RetryableAwsError

    sync_source(source, mode=SyncRun.Mode.FULL)

    def broken(self, **kwargs):  # type: ignore[no-untyped-def]
        yield []
        raise RetryableAwsError("ListModelPackages: ThrottlingException: Rate exceeded", operation="ListModelPackages")

    monkeypatch.setattr(RegistryClient, "iter_package_summary_pages", broken)
    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    assert run.status == SyncRun.Status.FAILED
    assert "Rate exceeded" in run.error
    assert not ModelPackage.objects.filter(deleted_at__isnull=False).exists()


def test_malformed_record_recorded_and_rest_continue(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, _, arns = registry
    original = aws_requests.search_package_pages

    def corrupt(client, **kwargs):  # type: ignore[no-untyped-def]
        for page in original(client, **kwargs):
            for record in page:
                if record["ModelPackageArn"] == arns["c2"]:
                    record["CreationTime"] = "not-a-date"
            yield page

    monkeypatch.setattr(aws_requests, "search_package_pages", corrupt)
    run = sync_source(source, mode=SyncRun.Mode.FULL)
    assert not ModelPackage.objects.filter(arn=arns["c2"]).exists()
    assert ModelPackage.objects.count() == 3
    assert any(arns["c2"] in e["subject"] and "malformed" in e["message"] for e in run.errors)


def test_search_denied_falls_back_to_list_and_describe(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from registry_app.aws.errors import AccessDeniedError

    def denied(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AccessDeniedError("Search: AccessDeniedException: not authorized", operation="Search")
        yield  # pragma: no cover

    monkeypatch.setattr(aws_requests, "search_package_pages", denied)
    run = sync_source(source, mode=SyncRun.Mode.FULL)
    assert ModelPackage.objects.count() == 4
    assert run.counts["search_fallback"] == 1
    assert run.aws_calls["DescribeModelPackage"] == 4


def test_concurrent_sync_of_one_source_is_skipped(registry, source) -> None:  # type: ignore[no-untyped-def]
    token = acquire_lock(source)
    assert token and acquire_lock(source) is None
    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    assert run.status == SyncRun.Status.SKIPPED
    assert not ModelPackage.objects.exists()
    release_lock(source, token)
    assert sync_source(source, mode=SyncRun.Mode.INCREMENTAL).status in ("succeeded", "partial")


def test_a_claimed_run_is_not_executed_twice(registry, source) -> None:  # type: ignore[no-untyped-def]
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.INCREMENTAL, trigger="beat")
    first = execute_run(run.pk)
    calls = first.total_calls
    second = execute_run(run.pk)  # e.g. a redelivered task
    assert second.total_calls == calls
    assert SyncRun.objects.get(pk=run.pk).status == first.status


def test_assume_role_source(registry, db) -> None:  # type: ignore[no-untyped-def]
    from registry_app.models import RegistrySource

    iam = boto3.client("iam", region_name=h.REGION)
    role = iam.create_role(RoleName="GovernanceReader", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    source = RegistrySource.objects.create(name="xacct", region=h.REGION, role_arn=role, external_id="ext-123")
    stats = CallStats()
    client = RegistryClient(SourceConfig.from_source(source), stats)
    caller = client.client("sts").get_caller_identity()["Arn"]
    assert ":assumed-role/GovernanceReader/" in caller
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.FULL, trigger="command")
    run = execute_run(run.pk, client=client)
    assert ModelPackage.objects.filter(source=source).count() == 4


def test_throttling_and_5xx_are_retried(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Throttling, a 500 and a timeout on the listing: botocore retries, the sync completes."""
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda s: None)  # no real back-off in tests
    client = RegistryClient(SourceConfig.from_source(source))
    attempts = h.inject_errors(
        client.client("sagemaker"),
        "ListModelPackages",
        [(400, "ThrottlingException"), (500, "InternalFailure"), (0, "Timeout")],
    )
    mark_synced(source)  # an incremental run, not a first (full) sync
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.INCREMENTAL, trigger="command")
    run = execute_run(run.pk, client=client)
    assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), run.error
    assert ModelPackage.objects.count() == 4
    assert run.aws_calls["ListModelPackages"] == 1  # one logical call ...
    assert len(attempts) == 4  # ... four HTTP attempts
    assert client.stats.throttles["ListModelPackages"] == 1
    assert run.counts["throttled_attempts"] == 1


def test_persistent_throttling_fails_the_run_cleanly(registry, source, monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda s: None)
    settings.AWS_MAX_ATTEMPTS = 3
    client = RegistryClient(SourceConfig.from_source(source))
    attempts = h.inject_errors(client.client("sagemaker"), "ListModelPackages", [(400, "ThrottlingException")] * 3)
    mark_synced(source)
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.INCREMENTAL, trigger="command")
    run = execute_run(run.pk, client=client)
    assert len(attempts) == 3, attempts
    assert run.status == SyncRun.Status.FAILED
    assert "ThrottlingException" in run.error
    assert source.__class__.objects.get(pk=source.pk).sync_locked_until is None  # lock released
