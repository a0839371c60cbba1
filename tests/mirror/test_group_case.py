"""Package ARNs lower-case the group name (issue 9 item 7): group ``FraudModel``'s packages are
``model-package/fraudmodel/N``. The group is taken from the record's ``ModelPackageGroupName``, and ARNs
(and card names taken from ARNs) are compared without regard to case.

The AWS-faithful fake lower-cases package ARNs as AWS does; ``AwsShapedClient`` stands in for AWS where
a group ARN's case differs from the name-built one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from registry_app.aws.errors import RetryableAwsError
from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.mirror.execute import execute_run, sync_source
from registry_app.models import ModelCard, ModelPackage, ModelPackageGroup, SyncRun
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db


def test_a_new_mixed_case_group_is_described_once_by_its_name(aws, source) -> None:  # type: ignore[no-untyped-def]
    sm, _ = h.clients()
    h.create_group(sm, "credit-risk")
    h.create_package(sm, "credit-risk")
    sync_source(source, mode=SyncRun.Mode.FULL)
    h.create_group(sm, "FraudModel", "fraud")
    arn = h.create_package(sm, "FraudModel")
    assert arn.endswith(":model-package/fraudmodel/1")  # the ARN lower-cases the group name

    runs = [sync_source(source, mode=SyncRun.Mode.INCREMENTAL) for _ in range(2)]

    assert [r.status for r in runs] == [SyncRun.Status.SUCCEEDED] * 2, [r.errors for r in runs]
    assert runs[0].aws_calls.get("DescribeModelPackageGroup") == 1
    assert "DescribeModelPackageGroup" not in runs[1].aws_calls  # known by its name from now on
    group = ModelPackageGroup.objects.get(name="FraudModel")
    assert group.description == "fraud" and ModelPackage.objects.get(arn=arn).group == group
    sync_source(source, mode=SyncRun.Mode.FULL)
    assert ModelPackageGroup.objects.filter(name__iexact="fraudmodel").count() == 1
    assert ModelPackageGroup.objects.get(name="FraudModel").deleted_at is None


def test_a_card_named_by_a_lower_cased_card_arn_is_linked(aws, source) -> None:  # type: ignore[no-untyped-def]
    sm, _ = h.clients()
    sm.create_model_card(ModelCardName="FraudCard", Content=json.dumps({"model_overview": {}}), ModelCardStatus="Draft")
    card_arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-card/fraudcard"  # as AWS writes card ARNs
    h.create_group(sm, "FraudModel")
    arn = h.create_package(sm, "FraudModel", metadata={"ModelCardArn": card_arn})

    sync_source(source, mode=SyncRun.Mode.FULL)

    assert ModelPackage.objects.get(arn=arn).model_card == ModelCard.objects.get(name="FraudCard")


OWN = "111122223333"
GROUP_ARN = f"arn:aws:sagemaker:eu-west-1:{OWN}:model-package-group/fraudmodel"


def record(version: int) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": "FraudModel",
        "ModelPackageVersion": version,
        "ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:{OWN}:model-package/fraudmodel/{version}",
        "CreationTime": "2025-03-13T17:02:11+00:00",
        "LastModifiedTime": "2025-03-13T17:02:11+00:00",
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": "PendingManualApproval",
    }


class AwsShapedClient(RegistryClient):
    """Answers as AWS's documented shapes do; DescribeModelPackageGroup fails (throttled) while ``busy``."""

    def __init__(self, source: Any, *, busy: bool) -> None:
        super().__init__(SourceConfig.from_source(source))
        self.busy = busy
        self.described: list[str] = []

    def _call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        raise AssertionError(f"unexpected call {service}:{operation}")

    def account_id(self) -> str:
        return OWN

    def iter_group_pages(self, *, cross_account: bool = False) -> Iterator[list[dict]]:
        yield [] if cross_account else [{"ModelPackageGroupName": "FraudModel", "ModelPackageGroupArn": GROUP_ARN}]

    def list_tags(self, arn: str) -> dict[str, str]:
        return {}

    def describe_group(self, name_or_arn: str) -> dict[str, Any]:
        self.described.append(name_or_arn)
        if self.busy:
            raise RetryableAwsError("DescribeModelPackageGroup: ThrottlingException", operation="x")
        return {"ModelPackageGroupName": "FraudModel", "ModelPackageGroupArn": GROUP_ARN}

    def iter_search_package_pages(self, **_: Any) -> Iterator[list[dict]]:
        yield [record(1)]

    def _pages(self, service: str, operation: str, result_key: str, **params: Any) -> Iterator[list[dict]]:
        yield [{"ModelPackage": record(1)}]

    def iter_package_summary_pages(self, *, group: str | None = None) -> Iterator[list[dict]]:
        yield [record(1)]

    def describe_package(self, arn: str) -> dict[str, Any]:
        return record(1)

    def iter_model_card_pages(self) -> Iterator[list[dict]]:
        yield []

    def iter_endpoint_pages(self) -> Iterator[list[dict]]:
        yield []


def run(source: Any, client: RegistryClient, mode: str) -> SyncRun:
    return execute_run(SyncRun.objects.create(source=source, mode=mode, trigger="command").pk, client=client)


def test_a_group_that_could_not_be_described_is_not_duplicated_by_the_next_listing(source) -> None:  # type: ignore[no-untyped-def]
    """The package arrives while its group cannot be described: its row is made from the record. The
    next full listing names the group by an ARN spelled otherwise: the same row, nothing marked deleted."""
    from django.utils import timezone

    source.__class__.objects.filter(pk=source.pk).update(first_synced_at=timezone.now(), account_id=OWN)
    source.refresh_from_db()
    busy = AwsShapedClient(source, busy=True)
    run(source, busy, SyncRun.Mode.INCREMENTAL)
    assert busy.described == ["FraudModel"]  # by the record's name, never "fraudmodel" from the ARN
    assert ModelPackage.objects.get().group.name == "FraudModel"

    full = run(source, AwsShapedClient(source, busy=False), SyncRun.Mode.FULL)

    group = ModelPackageGroup.objects.get()  # one row
    assert group.arn == GROUP_ARN and group.deleted_at is None
    assert ModelPackage.objects.get().deleted_at is None
    assert "groups_deleted" not in full.counts and "packages_deleted" not in full.counts
