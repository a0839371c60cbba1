"""Full reconciliation sharded per group: the fan-out, the DB-counted finaliser, failing shards.

The shards run here by calling the task function the worker would run (tests/integration runs
them on a real worker); ``execute_run(fan_out=True)`` is what the sync task calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.mirror import aws_requests
from registry_app.mirror import mapping as sync
from registry_app.mirror.execute import execute_run, sync_source
from registry_app.mirror.leases import acquire_lock, release_lock
from registry_app.models import ModelPackage, ModelPackageGroup, PackageObservation, RegistrySource, SyncRun
from registry_app.tasks import sync_shard_task
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db

GROUPS = ("credit-risk", "house-price", "churn")


@pytest.fixture
def registry(aws: None) -> dict[str, Any]:
    """Three groups: credit-risk (3 versions), house-price (2), churn (1); one report each."""
    sm, s3 = h.clients()
    h.make_bucket(s3)
    report = h.put_json(s3, "credit/1/evaluation.json", h.BINARY_REPORT)
    arns: dict[str, list[str]] = {}
    for group, versions in zip(GROUPS, (3, 2, 1), strict=True):
        h.create_group(sm, group)
        arns[group] = [h.create_package(sm, group, report_uri=report) for _ in range(versions)]
    return {"sm": sm, "arns": arns}


@pytest.fixture
def searched(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The group filter of every Search listing, whichever client makes it."""
    groups: list[str | None] = []
    original = aws_requests.search_package_pages

    def spy(client: RegistryClient, **kwargs: Any) -> Iterator[list[dict]]:
        groups.append(kwargs.get("group"))
        yield from original(client, **kwargs)

    monkeypatch.setattr(aws_requests, "search_package_pages", spy)
    return groups


def fan_out(source: RegistrySource, capture: Any) -> tuple[SyncRun, list[tuple[Any, ...]]]:
    """Run a full sync the way the Celery task does; return the run and the shard tasks it sent."""
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.FULL, trigger=SyncRun.Trigger.BEAT)
    with mock.patch("registry_app.tasks.sync_shard_task.delay") as delay, capture(execute=True):
        run = execute_run(run.pk, task_id="task-1", fan_out=True)
    return run, [c.args for c in delay.call_args_list]


def fail_search_for(client: RegistryClient, group: str) -> list[str]:
    """Answer every Search attempt that filters on ``group`` with HTTP 500 (botocore retries it)."""
    from botocore.awsrequest import AWSResponse

    attempts: list[str] = []

    def handler(request: Any, **_: Any) -> Any:
        body = json.loads(request.body or b"{}")
        filters = (body.get("SearchExpression") or {}).get("Filters") or []
        if {"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": group} not in filters:
            return None
        attempts.append(group)
        payload = json.dumps({"__type": "InternalFailure", "message": "injected"}).encode()
        return AWSResponse(request.url, 500, {"Content-Type": "application/x-amz-json-1.1"}, h._RawBody(payload))

    client.client("sagemaker").meta.events.register("before-send.sagemaker.Search", handler)
    return attempts


# --- pure helpers -----------------------------------------------------------------------------


def test_plan_shards_splits_sorted_unique_ids() -> None:
    assert sync.plan_shards([5, 3, 9, 3, 1], 2) == [[1, 3], [5, 9]]
    assert sync.plan_shards([4, 2], 1) == [[2], [4]]
    assert sync.plan_shards([], 10) == []
    assert sync.plan_shards([1, 2], 0) == [[1], [2]]  # never a zero-sized shard


def test_merge_counts_sums_and_keeps_flags_once() -> None:
    total = sync.merge_counts({"described": 2, "search_fallback": 1}, {"described": 3, "search_fallback": 1})
    assert total == {"described": 5, "search_fallback": 1}
    assert sync.merge_counts({}, {"errors": 0}) == {}
    assert sync.merge_calls({"Search": 1}, {"Search": 2, "ListTags": 1}) == {"ListTags": 1, "Search": 3}


def test_sharded_outcome() -> None:
    assert sync.sharded_outcome({"groups": 3}, has_errors=False) == ("succeeded", "")
    assert sync.sharded_outcome({"groups": 3}, has_errors=True) == ("partial", "")
    status, error = sync.sharded_outcome({"groups": 3, "groups_failed": 1}, has_errors=True)
    assert status == "partial" and error.startswith("1 of 3 groups")
    assert sync.sharded_outcome({"groups": 2, "groups_failed": 2}, has_errors=True)[0] == "failed"
    assert sync.sharded_outcome({"groups": 2}, has_errors=False, final_error="boom") == ("failed", "boom")
    assert sync.final_counts({"shards": 2, "shards_done": 2, "shard_ids_done": [0, 1], "x": 0, "a": 1}) == {
        "a": 1,
        "shards": 2,
    }


# --- fan-out and finaliser --------------------------------------------------------------------


def test_full_sync_sends_one_shard_per_group_and_the_last_finalises(  # type: ignore[no-untyped-def]
    registry, source, settings, searched, django_capture_on_commit_callbacks
) -> None:
    settings.SYNC_SHARD_GROUPS = 1
    run, shards = fan_out(source, django_capture_on_commit_callbacks)

    # The first step listed the groups and sent one task per group, then returned.
    assert len(shards) == 3
    assert sorted(g for _, _, group_ids, _ in shards for g in group_ids) == sorted(
        ModelPackageGroup.objects.values_list("pk", flat=True)
    )
    assert [index for _, index, _, _ in shards] == [0, 1, 2]
    token = shards[0][3]
    assert run.status == SyncRun.Status.RUNNING
    assert run.counts["shards"] == 3 and run.counts["shards_done"] == 0
    assert run.aws_calls == {"GetCallerIdentity": 1, "ListModelPackageGroups": 2, "ListTags": 3}
    assert not ModelPackage.objects.exists()
    # The run holds the source's lease while its shards are queued: a second sync is skipped.
    assert RegistrySource.objects.get(pk=source.pk).sync_lock_token == token
    assert sync_source(source, mode=SyncRun.Mode.INCREMENTAL).status == SyncRun.Status.SKIPPED

    # Shards may run in any order, on any worker.
    for args in reversed(shards[1:]):
        sync_shard_task(*args)
        assert SyncRun.objects.get(pk=run.pk).status == SyncRun.Status.RUNNING
    sync_shard_task(*shards[0])
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, (run.error, run.errors)
    assert ModelPackage.objects.count() == 6
    assert run.counts == {
        "described": 6,
        "groups": 3,
        "groups_created": 3,
        "groups_reconciled": 3,
        "packages_created": 6,
        "reports_parsed": 6,
        "shards": 3,
    }
    # Each group listed exactly once, by its own Search; nothing listed or described otherwise (but
    # each new package's lineage artifact, looked for once: mirror/provenance.py).
    assert sorted(searched) == sorted(GROUPS)
    assert run.aws_calls == {
        "GetCallerIdentity": 1,
        "GetObject": 6,
        "ListArtifacts": 6,
        "ListEndpoints": 1,
        "ListModelCards": 1,
        "ListModelPackageGroups": 2,
        "ListTags": 3,
        "Search": 3,
    }
    assert run.finished_at is not None and run.duration_s is not None
    assert RegistrySource.objects.get(pk=source.pk).sync_locked_until is None  # the finaliser freed it

    # A redelivered shard is a no-op: no AWS call, nothing recorded twice.
    sync_shard_task(*shards[1])
    assert SyncRun.objects.get(pk=run.pk).aws_calls == run.aws_calls
    assert len(searched) == 3


def test_shards_batch_groups(registry, source, settings, searched, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    settings.SYNC_SHARD_GROUPS = 2
    run, shards = fan_out(source, django_capture_on_commit_callbacks)
    assert [len(group_ids) for _, _, group_ids, _ in shards] == [2, 1]
    for args in shards:
        sync_shard_task(*args)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["shards"] == 2 and run.aws_calls["Search"] == 3
    assert sorted(searched) == sorted(GROUPS)


def test_inline_full_sync_runs_the_same_shards(registry, source, settings, searched) -> None:  # type: ignore[no-untyped-def]
    """The management command (and ``sync_source``) runs the shards one after the other."""
    settings.SYNC_SHARD_GROUPS = 1
    run = sync_source(source, mode=SyncRun.Mode.FULL)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.counts["shards"] == 3 and run.counts["groups_reconciled"] == 3
    assert run.aws_calls["Search"] == 3 and sorted(searched) == sorted(GROUPS)


def test_a_failing_group_marks_nothing_deleted_and_the_others_complete(  # type: ignore[no-untyped-def]
    registry, source, settings, monkeypatch
) -> None:
    """Search for house-price fails (HTTP 500 through botocore's retries): that group is left
    as it was, even though one of its packages vanished; the other groups are reconciled."""
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda s: None)
    settings.SYNC_SHARD_GROUPS = 1
    settings.AWS_MAX_ATTEMPTS = 2
    assert sync_source(source, mode=SyncRun.Mode.FULL).status == SyncRun.Status.SUCCEEDED
    arns = registry["arns"]
    h.delete_package_in_moto(arns["house-price"][1])
    h.delete_package_in_moto(arns["credit-risk"][2])
    h.set_status(registry["sm"], arns["churn"][0], "Approved", "approved in Studio")

    client = RegistryClient(SourceConfig.from_source(source))
    attempts = fail_search_for(client, "house-price")
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.FULL, trigger="command")
    run = execute_run(run.pk, client=client)

    assert run.status == SyncRun.Status.PARTIAL
    assert run.error.startswith("1 of 3 groups could not be reconciled")
    [failure] = [e for e in run.errors if e["subject"] == "group house-price"]
    assert "InternalFailure" in failure["message"]
    assert run.counts["groups_failed"] == 1 and run.counts["groups_reconciled"] == 2
    assert attempts == ["house-price", "house-price"]  # botocore's two attempts of one call
    assert run.aws_calls["Search"] == 3  # one logical Search per group, none repeated
    # The failed group: nothing marked deleted, although a package is gone from the registry.
    assert not ModelPackage.objects.filter(group__name="house-price", deleted_at__isnull=False).exists()
    # The other groups completed: a deletion and an approval made in the registry are mirrored.
    assert ModelPackage.objects.get(arn=arns["credit-risk"][2]).deleted_at is not None
    assert run.counts["packages_deleted"] == 1
    assert ModelPackage.objects.get(arn=arns["churn"][0]).approval_status == "Approved"
    assert RegistrySource.objects.get(pk=source.pk).sync_locked_until is None


def test_every_group_failing_fails_the_run(registry, source, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda s: None)
    settings.AWS_MAX_ATTEMPTS = 1
    client = RegistryClient(SourceConfig.from_source(source))
    for group in GROUPS:
        fail_search_for(client, group)
    run = execute_run(SyncRun.objects.create(source=source, mode="full", trigger="command").pk, client=client)
    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("3 of 3 groups")
    assert not ModelPackage.objects.exists()


def test_failed_group_listing_fails_the_run_and_marks_nothing(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from registry_app.aws.errors import RetryableAwsError

    sync_source(source, mode=SyncRun.Mode.FULL)
    h.delete_package_in_moto(registry["arns"]["churn"][0])

    def broken(self: RegistryClient, **kwargs: Any) -> Iterator[list[dict]]:
        raise RetryableAwsError("ListModelPackageGroups: ThrottlingException", operation="ListModelPackageGroups")
        yield []  # pragma: no cover

    monkeypatch.setattr(RegistryClient, "iter_group_pages", broken)
    with mock.patch("registry_app.tasks.sync_shard_task.delay") as delay:
        run = sync_source(source, mode=SyncRun.Mode.FULL)
    assert run.status == SyncRun.Status.FAILED and "ThrottlingException" in run.error
    assert delay.call_count == 0
    assert not ModelPackage.objects.filter(deleted_at__isnull=False).exists()
    assert RegistrySource.objects.get(pk=source.pk).sync_locked_until is None


def test_vanished_group_and_its_packages_are_marked_deleted(registry, source) -> None:  # type: ignore[no-untyped-def]
    from moto.sagemaker.models import sagemaker_backends

    sync_source(source, mode=SyncRun.Mode.FULL)
    backend = sagemaker_backends["123456789012"][h.REGION]
    for arn in registry["arns"]["churn"]:
        backend.model_packages.pop(arn)
    backend.model_package_groups.pop("churn")
    run = sync_source(source, mode=SyncRun.Mode.FULL)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert ModelPackageGroup.objects.get(name="churn").deleted_at is not None
    churn = ModelPackage.objects.get(arn=registry["arns"]["churn"][0])
    assert churn.deleted_at is not None
    assert churn.observations.filter(change=PackageObservation.Change.DELETED).count() == 1
    assert run.counts["groups_deleted"] == 1 and run.counts["packages_deleted"] == 1
    assert run.counts["shards"] == 1 and run.counts["groups"] == 2  # the deleted group is not sharded
    assert ModelPackage.objects.filter(deleted_at__isnull=True).count() == 5


def test_shard_that_lost_the_lease_does_nothing(  # type: ignore[no-untyped-def]
    registry, source, settings, searched, django_capture_on_commit_callbacks
) -> None:
    """A shard that waited in the queue past the lease finds another sync holding it: recorded,
    nothing synced; the run still finishes (partial) once every shard has reported."""
    settings.SYNC_SHARD_GROUPS = 1
    run, shards = fan_out(source, django_capture_on_commit_callbacks)
    RegistrySource.objects.filter(pk=source.pk).update(sync_locked_until=timezone.now() - timezone.timedelta(seconds=1))
    other = acquire_lock(source)
    assert other
    sync_shard_task(*shards[0])
    assert searched == []
    release_lock(source, other)
    for args in shards[1:]:  # the lease is free again: the remaining shards take it back
        sync_shard_task(*args)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.PARTIAL
    assert run.counts["groups_failed"] == 1 and run.counts["groups_reconciled"] == 2
    assert any("another sync holds the source's lease" in e["message"] for e in run.errors)
    assert len(searched) == 2
    assert RegistrySource.objects.get(pk=source.pk).sync_locked_until is None


def test_broker_down_when_sending_shards_fails_the_run(registry, source, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.FULL, trigger=SyncRun.Trigger.BEAT)
    with (
        mock.patch("registry_app.tasks.sync_shard_task.delay", side_effect=ConnectionError("redis down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        execute_run(run.pk, fan_out=True)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED and "redis down" in run.error
    assert RegistrySource.objects.get(pk=source.pk).sync_locked_until is None


def test_search_denied_falls_back_per_group_and_is_counted_once(registry, source, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from registry_app.aws.errors import AccessDeniedError

    settings.SYNC_SHARD_GROUPS = 2
    listed: list[str | None] = []
    original = RegistryClient.iter_package_summary_pages

    def denied(*args: Any, **kwargs: Any) -> Iterator[list[dict]]:
        raise AccessDeniedError("Search: AccessDeniedException: not authorized", operation="Search")
        yield []  # pragma: no cover

    def spy(self: RegistryClient, **kwargs: Any) -> Iterator[list[dict]]:
        listed.append(kwargs.get("group"))
        yield from original(self, **kwargs)

    monkeypatch.setattr(aws_requests, "search_package_pages", denied)
    monkeypatch.setattr(RegistryClient, "iter_package_summary_pages", spy)
    run = sync_source(source, mode=SyncRun.Mode.FULL)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert ModelPackage.objects.count() == 6
    assert sorted(listed) == sorted(GROUPS)  # each group listed once, by name
    assert run.aws_calls["DescribeModelPackage"] == 6
    assert run.counts["search_fallback"] == 1
