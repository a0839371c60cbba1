"""A full reconciliation never marks a live package deleted (issue 9 item 3).

Search's index may lag behind the registry (``TotalHits.Relation`` can be an estimate) and its default
sort, ``LastModifiedTime``, moves packages the dashboard itself updates during the walk. The walk is in
``CreationTime`` order, and a package it does not return is confirmed with DescribeModelPackage before
it is marked deleted: not found -> deleted; found -> applied; any other answer -> left, asked again.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.devtools.aws_fake import search as fake_search
from registry_app.mirror.execute import sync_source
from registry_app.models import ModelPackage, PackageObservation, SyncRun
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry(aws: None) -> tuple[Any, list[str]]:
    sm, _ = h.clients()
    h.create_group(sm, "credit-risk")
    return sm, [h.create_package(sm, "credit-risk") for _ in range(4)]


@pytest.fixture
def lagging_index(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """ARNs Search's index does not show yet (the registry, Describe and List do)."""
    hidden: set[str] = set()
    real = fake_search.search

    def search(response: Any, resource: str) -> dict[str, Any]:
        result = real(response, resource)
        result["Results"] = [r for r in result["Results"] if r.get(resource, {}).get(f"{resource}Arn") not in hidden]
        return result

    monkeypatch.setattr(fake_search, "search", search)
    return hidden


def test_a_package_searchs_index_lags_on_is_described_not_deleted(registry, source, lagging_index) -> None:  # type: ignore[no-untyped-def]
    sm, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    h.set_status(sm, arns[1], "Approved", "approved meanwhile")
    lagging_index.add(arns[1])

    run = sync_source(source, mode=SyncRun.Mode.FULL)

    package = ModelPackage.objects.get(arn=arns[1])
    assert package.deleted_at is None
    assert not PackageObservation.objects.filter(change=PackageObservation.Change.DELETED).exists()
    assert package.approval_status == "Approved"  # the describe that refuted it was applied
    assert run.counts["deletions_refuted"] == 1
    assert run.aws_calls["DescribeModelPackage"] == 1
    assert run.status == SyncRun.Status.SUCCEEDED


def test_an_unanswered_describe_marks_nothing_deleted(registry, source, lagging_index, monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    _, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    lagging_index.add(arns[2])
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda s: None)
    settings.AWS_MAX_ATTEMPTS = 2
    client = RegistryClient(SourceConfig.from_source(source))
    h.inject_errors(client.client("sagemaker"), "DescribeModelPackage", [(500, "InternalFailure")] * 2)

    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.FULL, trigger="command")
    from registry_app.mirror.execute import execute_run

    run = execute_run(run.pk, client=client)

    assert ModelPackage.objects.get(arn=arns[2]).deleted_at is None
    assert run.counts["deletions_unconfirmed"] == 1
    assert run.status == SyncRun.Status.PARTIAL  # "unknown, try again": recorded, nothing marked
    assert any(arns[2] == e["subject"] and "not marked deleted" in e["message"] for e in run.errors)


def test_a_package_the_registry_no_longer_has_is_marked_deleted(registry, source) -> None:  # type: ignore[no-untyped-def]
    _, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    h.delete_package_in_moto(arns[3])

    run = sync_source(source, mode=SyncRun.Mode.FULL)

    assert ModelPackage.objects.get(arn=arns[3]).deleted_at is not None
    assert run.counts["packages_deleted"] == 1 and run.aws_calls["DescribeModelPackage"] == 1


def test_the_walk_is_in_creation_order(registry, source) -> None:  # type: ignore[no-untyped-def]
    """Every Search of the full walk sorts by CreationTime (which no update moves), 100 a page."""
    client = RegistryClient(SourceConfig.from_source(source))
    bodies: list[dict[str, Any]] = []

    def spy(request: Any, **_: Any) -> None:
        bodies.append(json.loads(request.body))

    client.client("sagemaker").meta.events.register("before-send.sagemaker.Search", spy)
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.FULL, trigger="command")
    from registry_app.mirror.execute import execute_run

    execute_run(run.pk, client=client)

    assert bodies and all(
        (b["SortBy"], b["SortOrder"], b["MaxResults"]) == ("CreationTime", "Ascending", 100) for b in bodies
    )
    assert ModelPackage.objects.count() == 4


def test_updates_during_the_walk_skip_nothing(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Pages of one record; after the first page, the dashboard pushes to an already-read package and
    to an unread one. In creation order neither moves: every package is read once, none marked."""
    from registry_app.aws import sagemaker as adapter
    from registry_app.mirror import aws_requests

    sm, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    monkeypatch.setattr(adapter, "PAGE_SIZE", 1)
    real = aws_requests.search_package_pages
    read: list[str] = []

    def pushes_mid_walk(client: Any, **kwargs: Any) -> Any:
        for index, page in enumerate(real(client, **kwargs)):
            read.extend(r["ModelPackageArn"] for r in page)
            if index == 0:
                h.set_status(sm, arns[0], "Approved")
                h.set_status(sm, arns[2], "Rejected")
            yield page

    monkeypatch.setattr(aws_requests, "search_package_pages", pushes_mid_walk)
    run = sync_source(source, mode=SyncRun.Mode.FULL)

    assert read == arns  # each once, in creation order
    assert run.counts.get("packages_deleted") is None and "DescribeModelPackage" not in run.aws_calls
    assert ModelPackage.objects.get(arn=arns[2]).approval_status == "Rejected"


def test_the_creation_ordered_search_request_follows_the_service_model(source) -> None:  # type: ignore[no-untyped-def]
    """botocore's Stubber checks the request against the Search input shape (and pages on NextToken)."""
    from registry_app.mirror import aws_requests
    from tests.aws.contracts import model_violations

    client = RegistryClient(SourceConfig.from_source(source))
    sagemaker = client.client("sagemaker")
    expected = {
        "Resource": "ModelPackage",
        "MaxResults": 100,
        "SortBy": "CreationTime",
        "SortOrder": "Ascending",
        "SearchExpression": {"Filters": [{"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": "Churn"}]},
    }
    assert not model_violations(sagemaker.meta.service_model.operation_model("Search").input_shape, expected)
    record = {"ModelPackageGroupName": "Churn", "ModelPackageVersion": 1}
    record["ModelPackageArn"] = "arn:aws:sagemaker:eu-west-1:111122223333:model-package/churn/1"
    with Stubber(sagemaker) as stubber:
        stubber.add_response("search", {"Results": [{"ModelPackage": record}], "NextToken": "t2"}, expected)
        last = {"Results": [], "TotalHits": {"Value": 1, "Relation": "EqualTo"}}
        stubber.add_response("search", last, {**expected, "NextToken": "t2"})
        pages = list(aws_requests.search_package_pages(client, group="Churn"))
    assert pages == [[record], []]
    assert client.stats.as_dict() == {"Search": 2}
