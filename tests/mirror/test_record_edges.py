"""Records as AWS returns them, not as moto does (issue 9 item 9): a summary without an approval status,
Search and Describe records of one package, a denied ListTags on a shared group, a 0-byte report."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto.core.responses import ActionResult
from moto.sagemaker.responses import SageMakerResponse

from registry_app.aws.errors import AccessDeniedError
from registry_app.aws.sagemaker import RegistryClient
from registry_app.mirror import mapping
from registry_app.mirror.execute import execute_run, sync_source
from registry_app.mirror.reconcile import package_refresh
from registry_app.models import EvaluationReport, ModelPackage, ModelPackageGroup, PackageObservation, SyncRun
from tests import aws_helpers as h
from tests.mirror.test_shared_groups import OTHER, FakeClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(aws: None) -> tuple[Any, list[str]]:
    sm, _ = h.clients()
    h.create_group(sm, "credit-risk", "PD model")
    return sm, [h.create_package(sm, "credit-risk") for _ in range(2)]


def no_search(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: RegistryClient, **kwargs: Any) -> Iterator[list[dict]]:
        raise AccessDeniedError("Search: AccessDeniedException")
        yield []  # pragma: no cover

    monkeypatch.setattr(RegistryClient, "iter_search_package_pages", denied)


def test_a_summary_without_an_approval_status_is_described(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``ModelApprovalStatus`` is optional in ``ModelPackageSummary``: its absence is "unknown", which
    differs from the mirrored status, so the package is described (no crash, no stale status)."""
    sm, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    h.set_status(sm, arns[0], "Approved")
    no_search(monkeypatch)  # only the listing can tell
    real = RegistryClient.iter_package_summary_pages

    def without_status(self: RegistryClient, **kwargs: Any) -> Iterator[list[dict]]:
        for page in real(self, **kwargs):
            yield [{k: v for k, v in s.items() if k != "ModelApprovalStatus"} for s in page]

    monkeypatch.setattr(RegistryClient, "iter_package_summary_pages", without_status)
    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)

    assert run.status == SyncRun.Status.SUCCEEDED, run.errors
    assert ModelPackage.objects.get(arn=arns[0]).approval_status == "Approved"
    assert run.aws_calls["DescribeModelPackage"] == 2  # both summaries said "unknown"


def test_search_and_describe_records_hash_alike() -> None:
    """botocore: Search's ModelPackage record adds ``Tags``; DescribeModelPackage adds ``ManagedStorageType``."""
    base = {
        "ModelPackageArn": "arn:aws:sagemaker:eu-west-1:1:model-package/g/1",
        "ModelPackageGroupName": "g",
        "ModelPackageVersion": 1,
        "ModelApprovalStatus": "Approved",
    }
    searched = {**base, "Tags": [{"Key": "team", "Value": "risk"}]}
    described = {**base, "ManagedStorageType": "Restricted"}
    assert mapping.record_hash(searched) == mapping.record_hash(described)
    assert mapping.package_fields(searched)["content_hash"] == mapping.package_fields(described)["content_hash"]


def test_a_package_read_by_search_then_by_describe_is_not_rewritten(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """On the fake, with DescribeModelPackage answering ``ManagedStorageType`` as AWS's does."""
    _, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)  # Search records (with Tags)
    real = SageMakerResponse.describe_model_package

    def as_aws(self: SageMakerResponse) -> ActionResult:
        body = real(self).result
        return ActionResult({**body, "ManagedStorageType": "Restricted"})  # type: ignore[dict-item]

    monkeypatch.setattr(SageMakerResponse, "describe_model_package", as_aws)
    package = ModelPackage.objects.get(arn=arns[1])
    before = (package.content_hash, package.last_synced_at)

    package_refresh(package.pk)  # DescribeModelPackage, as after a push

    package.refresh_from_db()
    assert (package.content_hash, package.last_synced_at) == before
    assert not PackageObservation.objects.filter(change=PackageObservation.Change.UPDATED).exists()


def test_a_denied_list_tags_on_a_shared_group_is_a_warning(source) -> None:  # type: ignore[no-untyped-def]
    class TagsDeniedOnShares(FakeClient):
        def list_tags(self, arn: str) -> dict[str, str]:
            if f":{OTHER}:" in arn:
                raise AccessDeniedError(f"ListTags: AccessDeniedException: not authorized on {arn}")
            return {"team": "risk"}

    run = execute_run(
        SyncRun.objects.create(source=source, mode=SyncRun.Mode.FULL, trigger="command").pk,
        client=TagsDeniedOnShares(source),
    )

    assert run.status == SyncRun.Status.SUCCEEDED, run.errors
    assert run.counts["tags_denied_shared"] == 1
    assert ModelPackageGroup.objects.get(name="central-fraud").deleted_at is None
    assert ModelPackageGroup.objects.get(name="local-model").tags == {"team": "risk"}


def test_a_denied_list_tags_does_not_lose_the_described_group(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    sm, _ = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    h.create_group(sm, "house-price", "Regression on sale prices")
    h.create_package(sm, "house-price")

    def denied(self: RegistryClient, arn: str) -> dict[str, str]:
        raise AccessDeniedError("ListTags: AccessDeniedException")

    monkeypatch.setattr(RegistryClient, "list_tags", denied)
    sync_source(source, mode=SyncRun.Mode.INCREMENTAL)

    group = ModelPackageGroup.objects.get(name="house-price")
    assert group.description == "Regression on sale prices" and group.created_at is not None
    assert group.packages.count() == 1


def test_a_zero_byte_report_is_stored_as_empty_not_as_a_parse_error(aws, source) -> None:  # type: ignore[no-untyped-def]
    sm, s3 = h.clients()
    h.make_bucket(s3)
    empty = h.put_json(s3, "credit/1/evaluation.json", b"")
    broken = h.put_json(s3, "credit/2/evaluation.json", b"{not json")
    h.create_group(sm, "credit-risk")
    first = h.create_package(sm, "credit-risk", report_uri=empty)
    second = h.create_package(sm, "credit-risk", report_uri=broken)

    run = sync_source(source, mode=SyncRun.Mode.FULL)

    report = ModelPackage.objects.get(arn=first).reports.get()
    assert (report.status, report.size_bytes) == (EvaluationReport.Status.EMPTY, 0)
    assert report.get_status_display() == "Empty report" and "empty (0 bytes)" in report.error
    assert ModelPackage.objects.get(arn=second).reports.get().status == EvaluationReport.Status.PARSE_ERROR
    assert run.counts["reports_empty"] == 1 and run.counts["report_errors"] == 1
