"""Groups shared from another account through AWS RAM: mirrored with their owner account.

moto ignores ``CrossAccountFilterOption`` and keeps one account per backend, so this uses a
fake adapter returning API-shaped records (as the API reference documents them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.mirror.execute import execute_run
from registry_app.models import ModelPackage, ModelPackageGroup, SyncRun

pytestmark = pytest.mark.django_db

OWN, OTHER = "111122223333", "444455556666"


def pkg(account: str, group: str, version: int, status: str = "PendingManualApproval") -> dict[str, Any]:
    return {
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:{account}:model-package/{group}/{version}",
        "CreationTime": "2025-03-13T17:02:11+00:00",
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
    }


class FakeClient(RegistryClient):
    def __init__(self, source: Any) -> None:
        super().__init__(SourceConfig.from_source(source))
        self.own = [pkg(OWN, "local-model", 1)]
        self.shared = [pkg(OTHER, "central-fraud", 1, "Approved"), pkg(OTHER, "central-fraud", 2)]
        self.listed_groups: list[str | None] = []

    def _count(self, op: str) -> None:
        self.stats.record(op, 0.0)

    def account_id(self) -> str:
        self._count("GetCallerIdentity")
        return OWN

    def iter_group_pages(self, *, cross_account: bool = False) -> Iterator[list[dict]]:
        self._count("ListModelPackageGroups")
        account, name = (OTHER, "central-fraud") if cross_account else (OWN, "local-model")
        yield [
            {
                "ModelPackageGroupName": name,
                "ModelPackageGroupArn": f"arn:aws:sagemaker:eu-west-1:{account}:model-package-group/{name}",
                "CreationTime": "2025-01-01T00:00:00+00:00",
                "ModelPackageGroupStatus": "Completed",
            }
        ]

    def list_tags(self, arn: str) -> dict[str, str]:
        self._count("ListTags")
        return {}

    def iter_search_package_pages(self, **_: Any) -> Iterator[list[dict]]:
        self._count("Search")
        yield [dict(p) for p in self.own]  # Search sees this account's packages only

    def _call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        raise AssertionError(f"unexpected call {service}:{operation}")  # never reach the network

    def _pages(self, service: str, operation: str, result_key: str, **params: Any) -> Iterator[list[dict]]:
        """Search sorted and filtered by group (the full walk's, ``mirror.aws_requests``); ML Lineage
        Tracking (the provenance pass) knows no artifact for these packages."""
        if (service, operation) == ("sagemaker", "ListArtifacts"):
            self._count("ListArtifacts")
            yield []
            return
        assert (service, operation) == ("sagemaker", "Search"), (service, operation)
        self._count("Search")
        group = params["SearchExpression"]["Filters"][0]["Value"]
        yield [{"ModelPackage": dict(p)} for p in self.own if p["ModelPackageGroupName"] == group]

    def iter_package_summary_pages(self, *, group: str | None = None) -> Iterator[list[dict]]:
        self._count("ListModelPackages")
        self.listed_groups.append(group)
        yield [dict(p) for p in (self.shared if group else self.own)]

    def describe_package(self, arn: str) -> dict[str, Any]:
        self._count("DescribeModelPackage")
        return next(dict(p) for p in self.own + self.shared if p["ModelPackageArn"] == arn)

    def iter_model_card_pages(self) -> Iterator[list[dict]]:
        yield []

    def iter_endpoint_pages(self) -> Iterator[list[dict]]:
        yield []


def run(source: Any, client: FakeClient, mode: str) -> SyncRun:
    sync_run = SyncRun.objects.create(source=source, mode=mode, trigger="command")
    return execute_run(sync_run.pk, client=client)


def test_shared_group_mirrored_with_owner_account(source) -> None:  # type: ignore[no-untyped-def]
    client = FakeClient(source)
    result = run(source, client, SyncRun.Mode.FULL)
    assert result.status == SyncRun.Status.SUCCEEDED, (result.error, result.errors)
    shared = ModelPackageGroup.objects.get(name="central-fraud")
    assert shared.owner_account == OTHER
    assert shared.is_shared
    assert not ModelPackageGroup.objects.get(name="local-model").is_shared
    assert ModelPackage.objects.filter(group=shared).count() == 2
    assert shared.arn in client.listed_groups  # listed by group ARN, as RAM shares require

    # Incremental: the shared group's packages are listed too, and an approval there is seen.
    fresh = FakeClient(source)
    fresh.shared[1]["ModelApprovalStatus"] = "Approved"
    result = run(source, fresh, SyncRun.Mode.INCREMENTAL)
    assert ModelPackage.objects.get(arn=fresh.shared[1]["ModelPackageArn"]).approval_status == "Approved"
    # Search from the watermark does not return shared packages: their listing does.
    assert result.aws_calls == {"DescribeModelPackage": 1, "ListModelPackages": 2, "Search": 1}
    assert not ModelPackage.objects.filter(deleted_at__isnull=False).exists()


def test_shared_listing_denied_marks_no_shared_group_deleted(source) -> None:  # type: ignore[no-untyped-def]
    """The cross-account group listing fails: shared groups are not taken for vanished (the listing
    was not complete); they are still reconciled by ARN, and nothing in them is marked deleted."""
    from registry_app.aws.errors import AccessDeniedError

    run(source, FakeClient(source), SyncRun.Mode.FULL)

    class DeniedShares(FakeClient):
        def iter_group_pages(self, *, cross_account: bool = False) -> Iterator[list[dict]]:
            if cross_account:
                raise AccessDeniedError("ListModelPackageGroups: AccessDeniedException", operation="x")
            yield from super().iter_group_pages()

    client = DeniedShares(source)
    result = run(source, client, SyncRun.Mode.FULL)
    assert result.status == SyncRun.Status.PARTIAL
    assert [e["subject"] for e in result.errors] == ["ListModelPackageGroups(CrossAccount)"]
    assert ModelPackageGroup.objects.get(name="central-fraud").deleted_at is None
    assert not ModelPackage.objects.filter(deleted_at__isnull=False).exists()
    assert ModelPackageGroup.objects.get(name="central-fraud").arn in client.listed_groups
    assert result.counts["groups_reconciled"] == 2
