"""Delivery under faults: AWS errors, lost tasks, dead workers, outside changes, duplicates, ordering."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.models import ModelPackage, PushOutbox
from registry_app.review import push as push_service
from registry_app.review.push import PushBlocked, push_execute, push_retry, pushes_resend_stuck
from registry_app.review.signoffs import signoff_create
from tests import aws_helpers as h
from tests.review.conftest import Outbox, Registry, UpdateCounter

pytestmark = pytest.mark.django_db

State = PushOutbox.State


def sign(user: Any, package: ModelPackage, role: str, decision: str = "approve", comment: str = "") -> Any:
    return signoff_create(user=user, package_id=package.pk, role=role, decision=decision, comment=comment)


def approve_all(outbox: Outbox, personas: dict[str, Any], package: ModelPackage, *, drain: bool = True) -> Any:
    result = None
    for name, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        with outbox.capture(execute=True):
            result = sign(personas[name], package, role)
    if drain:
        outbox.drain()
    return result


@pytest.fixture
def faulty_client(registry: Registry, monkeypatch: pytest.MonkeyPatch, no_backoff: None) -> RegistryClient:
    """The client every push uses, so a test can inject errors on it."""
    client = RegistryClient(SourceConfig.from_source(registry.source))
    monkeypatch.setattr(push_service, "registry_client_for", lambda push: client)
    return client


@pytest.mark.parametrize(
    "errors",
    [
        pytest.param([(400, "ThrottlingException"), (500, "InternalFailure")], id="throttle+500-within-botocore"),
        pytest.param([(0, "Timeout"), (503, "ServiceUnavailable")], id="timeout+503-within-botocore"),
    ],
)
def test_transient_errors_are_absorbed_by_botocore(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter, faulty_client, errors
) -> None:
    attempts = updates.reject_before_processing(faulty_client.client("sagemaker"), errors)
    approve_all(outbox, personas, registry.package("pending"))
    assert registry.describe("pending")["ModelApprovalStatus"] == "Approved"
    assert len(attempts) == 4 + len(errors)  # 4 pushes, plus the refused attempts botocore retried
    assert updates.count == 4  # each push processed exactly once
    assert len({call["token"] for call in updates.calls}) == 4
    assert set(PushOutbox.objects.values_list("state", flat=True)) == {State.SENT}


@pytest.mark.parametrize(
    "code",
    [(400, "ThrottlingException"), (500, "InternalFailure"), (0, "Timeout")],
    ids=["throttling", "http-500", "timeout"],
)
def test_errors_outlasting_botocore_are_retried_by_the_task(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter, faulty_client, code
) -> None:
    """Three failed attempts exhaust botocore (AWS_MAX_ATTEMPTS=3): the row goes back to pending,
    the Celery task retries with backoff, and the registry is updated exactly once."""
    package = registry.package("pending")
    with outbox.capture(execute=True):
        result = sign(personas["fair"], package, "fairness")
    push = result.pushes[0]
    attempts = updates.reject_before_processing(faulty_client.client("sagemaker"), [code] * 3)
    # First delivery without Celery: the error surfaces and the row is pending again.
    with pytest.raises(push_service.RetryableAwsError):
        push_execute(push.pk)
    push.refresh_from_db()
    assert push.state == State.PENDING and push.attempts == 1
    assert push.last_error
    assert updates.count == 0
    # The task (eager, with its autoretry) delivers it.
    outbox.drain()
    push.refresh_from_db()
    assert push.state == State.SENT and push.attempts == 2 and push.last_error == ""
    assert len(attempts) == 4
    assert updates.count == 1
    assert updates.calls[0]["token"] == str(push.pk)
    assert registry.describe("pending")["CustomerMetadataProperties"]["FairnessApproved"] == "true"


def test_response_lost_after_the_update_was_applied(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter, faulty_client
) -> None:
    """AWS applied the update but every response was a 500: botocore resent the same request
    (same ClientToken, which AWS de-duplicates), then the task's retry sees the registry already
    in the intended state and records it sent without another UpdateModelPackage."""
    package = registry.package("pending")
    with outbox.capture(execute=True):
        push = sign(personas["fair"], package, "fairness").pushes[0]
    h.inject_errors(faulty_client.client("sagemaker"), "UpdateModelPackage", [(500, "InternalFailure")] * 3)
    outbox.drain()
    push.refresh_from_db()
    assert push.state == State.SENT and push.attempts == 2
    assert "Already applied" in push.last_error
    assert updates.count == 3  # botocore's three attempts of one request ...
    assert {call["token"] for call in updates.calls} == {str(push.pk)}  # ... all with the push's token
    assert registry.describe("pending")["CustomerMetadataProperties"]["FairnessApproved"] == "true"


def test_task_retry_settings() -> None:
    from governance.celery import app
    from registry_app.tasks import push_task, resend_stuck_pushes_task

    assert push_task.name == "registry_app.tasks.push"
    assert push_service.RetryableAwsError in push_task.autoretry_for
    assert push_task.max_retries == 8
    assert push_task.retry_jitter is True
    assert push_task.retry_backoff and push_task.retry_backoff_max <= 3600  # far under Redis's 4 h
    app.finalize()
    entry = app.conf.beat_schedule["resend-stuck-pushes"]
    assert entry["task"] == resend_stuck_pushes_task.name == "registry_app.tasks.resend_stuck_pushes"
    assert entry["task"] in app.tasks
    assert float(entry["schedule"]) == 120.0


def test_final_error_fails_and_staff_can_retry(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter, faulty_client
) -> None:
    package = registry.package("pending")
    with outbox.capture(execute=True):
        push = sign(personas["fair"], package, "fairness").pushes[0]
    updates.reject_before_processing(faulty_client.client("sagemaker"), [(400, "ValidationException")])
    outbox.drain()
    push.refresh_from_db()
    assert push.state == State.FAILED
    assert "ValidationException" in push.last_error
    with outbox.capture(execute=True):
        push_retry(user=personas["staff"], push_id=push.pk)
    push.refresh_from_db()
    assert push.state == State.PENDING and "Retried by operator" in push.last_error
    outbox.drain()
    push.refresh_from_db()
    assert push.state == State.SENT
    assert updates.count == 1


def test_worker_absent_at_signoff_time_then_resent(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter
) -> None:
    package = registry.package("pending")
    # on_commit callbacks never run: the broker/worker never got the task.
    for name, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        sign(personas[name], package, role)
    assert outbox.queued == []
    assert registry.describe("pending")["ModelApprovalStatus"] == "PendingManualApproval"
    assert PushOutbox.objects.filter(state=State.PENDING).count() == 4
    # Too recent: nothing is re-sent yet.
    with outbox.capture(execute=True):
        assert pushes_resend_stuck(older_than_seconds=300) == 0
    PushOutbox.objects.update(updated_at=timezone.now() - dt.timedelta(minutes=10))
    with outbox.capture(execute=True):
        assert pushes_resend_stuck(older_than_seconds=300) == 4
    with outbox.capture(execute=True):
        assert pushes_resend_stuck(older_than_seconds=300) == 0  # idempotent
    # Re-sent in creation order.
    assert outbox.queued == [str(pk) for pk in PushOutbox.objects.order_by("created_at").values_list("pk", flat=True)]
    outbox.drain()
    assert registry.describe("pending")["ModelApprovalStatus"] == "Approved"
    assert updates.count == 4
    assert ModelPackage.objects.get(pk=package.pk).approval_status == "Approved"


def test_worker_died_after_update_is_not_sent_twice(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter, monkeypatch
) -> None:
    package = registry.package("pending")
    push = sign(personas["fair"], package, "fairness").pushes[0]
    original = push_service._Claim.finish

    def die_before_recording(self: Any, state: str, **fields: Any) -> bool:
        if state == State.SENT:
            raise SystemExit("worker killed")  # not an Exception: nothing in the worker handles it
        return original(self, state, **fields)

    monkeypatch.setattr(push_service._Claim, "finish", die_before_recording)
    with pytest.raises(SystemExit):
        push_execute(push.pk)
    monkeypatch.setattr(push_service._Claim, "finish", original)
    push.refresh_from_db()
    assert push.state == State.SENDING
    assert updates.count == 1
    assert registry.describe("pending")["CustomerMetadataProperties"]["FairnessApproved"] == "true"
    # A duplicate delivery while the claim is fresh does nothing at all.
    assert push_execute(push.pk).state == State.SENDING
    # The beat finds the dead claim, the push is re-delivered, and sees it already applied.
    PushOutbox.objects.filter(pk=push.pk).update(claimed_at=timezone.now() - dt.timedelta(minutes=10))
    with outbox.capture(execute=True):
        assert pushes_resend_stuck(older_than_seconds=300) == 1
    outbox.drain()
    push.refresh_from_db()
    assert push.state == State.SENT
    assert "Already applied" in push.last_error
    assert updates.count == 1  # exactly once
    assert ModelPackage.objects.get(pk=package.pk).customer_metadata["FairnessApproved"] == "true"


def test_worker_died_after_decision_update(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter
) -> None:
    """Simulated as the brief says: the row left sending, the registry already showing the decision."""
    package = registry.package("pending")
    approve_all(outbox, personas, package, drain=False)
    outbox.queued.clear()
    *flag_pushes, decision_push = list(PushOutbox.objects.order_by("created_at"))
    for push in flag_pushes:
        assert push_execute(push.pk).state == State.SENT
    current = registry.describe("pending")
    registry.sm.update_model_package(
        ModelPackageArn=registry.arns["pending"],
        ModelApprovalStatus=decision_push.target_status,
        ApprovalDescription=decision_push.target_description,
        CustomerMetadataProperties={**current["CustomerMetadataProperties"], **decision_push.flags},
    )
    updates.calls.clear()
    long_ago = timezone.now() - dt.timedelta(minutes=10)
    PushOutbox.objects.filter(pk=decision_push.pk).update(state=State.SENDING, claimed_at=long_ago, updated_at=long_ago)
    with outbox.capture(execute=True):
        assert pushes_resend_stuck() == 1
    outbox.drain()
    decision_push.refresh_from_db()
    assert decision_push.state == State.SENT and "Already applied" in decision_push.last_error
    assert updates.count == 0
    assert ModelPackage.objects.get(pk=package.pk).approval_status == "Approved"


def test_recovery_of_a_whole_series_is_not_a_conflict_with_itself(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter
) -> None:
    """Every push of a package left sending, the decision already in the registry: the flag
    pushes see the dashboard's own decision, not a change made elsewhere."""
    package = registry.package("pending")
    approve_all(outbox, personas, package, drain=False)
    outbox.queued.clear()
    decision_push = PushOutbox.objects.get(kind=PushOutbox.Kind.DECISION)
    registry.sm.update_model_package(
        ModelPackageArn=registry.arns["pending"],
        ModelApprovalStatus=decision_push.target_status,
        ApprovalDescription=decision_push.target_description,
        CustomerMetadataProperties={"GitCommitSha": "0123abc", "owner": "team-risk", **decision_push.flags},
    )
    updates.calls.clear()
    long_ago = timezone.now() - dt.timedelta(minutes=10)
    PushOutbox.objects.update(state=State.SENDING, claimed_at=long_ago, updated_at=long_ago)
    with outbox.capture(execute=True):
        assert pushes_resend_stuck() == 4
    outbox.drain()
    assert set(PushOutbox.objects.values_list("state", flat=True)) == {State.SENT}
    assert updates.count == 0


def test_status_changed_elsewhere_is_a_conflict(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter, notifications
) -> None:
    package = registry.package("pending")
    approve_all(outbox, personas, package, drain=False)
    h.set_status(registry.sm, registry.arns["pending"], "Rejected", "Rejected in Studio by the model owner")
    before = registry.describe("pending")
    updates.calls.clear()
    outbox.drain()
    assert updates.count == 0  # the registry is untouched
    assert registry.describe("pending") == before
    pushes = list(PushOutbox.objects.order_by("created_at"))
    assert {p.state for p in pushes} == {State.CONFLICT}
    decision_push = pushes[-1]
    detail = decision_push.conflict_detail
    assert detail["found_status"] == "Rejected"
    assert detail["found_description"] == "Rejected in Studio by the model owner"
    assert detail["last_modified_by"]
    assert detail["last_modified_at"]
    assert "changed outside the dashboard" in decision_push.last_error
    assert sorted(str(c.args[0]) for c in notifications.conflict.call_args_list) == sorted(str(p.pk) for p in pushes)
    # The mirror shows what the registry says.
    assert ModelPackage.objects.get(pk=package.pk).approval_status == "Rejected"


def test_staff_retry_of_a_conflict_applies_the_decision_over_it(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter
) -> None:
    package = registry.package("pending")
    approve_all(outbox, personas, package, drain=False)
    h.set_status(registry.sm, registry.arns["pending"], "Rejected", "by mistake")
    outbox.drain()
    decision_push = PushOutbox.objects.get(kind=PushOutbox.Kind.DECISION)
    assert decision_push.state == State.CONFLICT
    with pytest.raises(Exception) as denied:
        push_retry(user=personas["comp"], push_id=decision_push.pk)
    assert "staff" in str(denied.value)
    updates.calls.clear()
    with outbox.capture(execute=True):
        retried = push_retry(user=personas["staff"], push_id=decision_push.pk)
    assert retried.expected_status == "Rejected"
    outbox.drain()
    decision_push.refresh_from_db()
    assert decision_push.state == State.SENT
    described = registry.describe("pending")
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"]["ComplianceApproved"] == "true"
    assert updates.count == 1
    with pytest.raises(ValueError, match="only failed or conflicting"):
        push_retry(user=personas["staff"], push_id=decision_push.pk)


def test_duplicate_delivery_sends_once(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter
) -> None:
    package = registry.package("pending")
    with outbox.capture(execute=True):
        push = sign(personas["mlead"], package, "ml-lead").pushes[0]
    outbox.queued.extend([str(push.pk)] * 2)  # the broker delivered it three times
    outbox.drain()
    assert [r.result for r in outbox.results] == [State.SENT] * 3
    push.refresh_from_db()
    assert push.state == State.SENT and push.attempts == 1
    assert updates.count == 1


def test_pushes_of_a_package_go_out_in_creation_order(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter
) -> None:
    package = registry.package("pending")
    first = sign(personas["mlead"], package, "ml-lead").pushes[0]
    second = sign(personas["fair"], package, "fairness").pushes[0]
    with pytest.raises(PushBlocked):
        push_execute(second.pk)
    second.refresh_from_db()
    assert second.state == State.PENDING and second.attempts == 0
    assert updates.count == 0
    with outbox.capture(execute=True):
        assert push_execute(first.pk).state == State.SENT
    assert outbox.queued == [str(second.pk)]  # the next one is kicked at once
    outbox.drain()
    second.refresh_from_db()
    assert second.state == State.SENT
    metadata = registry.describe("pending")["CustomerMetadataProperties"]
    assert metadata["MLEngineerApproved"] == metadata["FairnessApproved"] == "true"


def test_failed_flag_push_is_superseded_by_the_decision(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, updates: UpdateCounter, faulty_client
) -> None:
    package = registry.package("pending")
    with outbox.capture(execute=True):
        flag_push = sign(personas["mlead"], package, "ml-lead").pushes[0]
    updates.reject_before_processing(faulty_client.client("sagemaker"), [(400, "ValidationException")])
    outbox.drain()
    flag_push.refresh_from_db()
    assert flag_push.state == State.FAILED
    for name, role in (("fair", "fairness"), ("comp", "compliance")):
        with outbox.capture(execute=True):
            sign(personas[name], package, role)
    outbox.drain()
    assert registry.describe("pending")["CustomerMetadataProperties"]["MLEngineerApproved"] == "true"
    sent_before = updates.count
    with outbox.capture(execute=True):
        push_retry(user=personas["staff"], push_id=flag_push.pk)
    outbox.drain()
    flag_push.refresh_from_db()
    assert flag_push.state == State.SENT
    assert "later decision push" in flag_push.last_error
    assert updates.count == sent_before


def test_metadata_limit_fails_with_a_clear_message(  # type: ignore[no-untyped-def]
    aws, db, personas, outbox: Outbox, updates: UpdateCounter
) -> None:
    from registry_app.mirror.reconcile import sync_source
    from registry_app.models import RegistrySource

    sm, _ = h.clients()
    h.create_group(sm, "crowded")
    arn = h.create_package(sm, "crowded", metadata={f"key{i}": "v" for i in range(50)})
    source = RegistrySource.objects.create(name="prod", region=h.REGION)
    sync_source(source, mode="full")
    package = ModelPackage.objects.get(arn=arn)
    with outbox.capture(execute=True):
        push = sign(personas["fair"], package, "fairness").pushes[0]
    outbox.drain()
    push.refresh_from_db()
    assert push.state == State.FAILED
    assert "51 CustomerMetadataProperties" in push.last_error and "50" in push.last_error
    assert updates.count == 0


def test_deleted_package_push_fails_finally(  # type: ignore[no-untyped-def]
    registry: Registry, personas, outbox: Outbox, no_backoff
) -> None:
    package = registry.package("pending")
    with outbox.capture(execute=True):
        push = sign(personas["fair"], package, "fairness").pushes[0]
    h.delete_package_in_moto(registry.arns["pending"], account="123456789012")
    outbox.drain()
    push.refresh_from_db()
    assert push.state == State.FAILED
    assert "DescribeModelPackage" in push.last_error


def test_broker_down_at_commit_does_not_break_the_signoff(  # type: ignore[no-untyped-def]
    registry: Registry, personas, django_capture_on_commit_callbacks
) -> None:
    from unittest import mock

    package = registry.package("pending")
    with (
        mock.patch("registry_app.tasks.push_task.apply_async", side_effect=ConnectionError("redis down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = sign(personas["fair"], package, "fairness")
    assert PushOutbox.objects.get(pk=result.pushes[0].pk).state == State.PENDING  # the beat sends it later


def test_push_assumes_the_role_as_the_acting_person(registry: Registry, personas, outbox: Outbox) -> None:  # type: ignore[no-untyped-def]
    """With a role ARN on the source, the push session carries the human as SourceIdentity (and
    session name), so CloudTrail names who approved, not just the dashboard."""
    import boto3

    from registry_app.models import RegistrySource

    iam = boto3.client("iam", region_name=h.REGION)
    # The trust policy docs/iam/ documents: pushes set SourceIdentity, which needs sts:SetSourceIdentity.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            }
        ],
    }
    role = iam.create_role(RoleName="GovernanceWriter", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    RegistrySource.objects.filter(pk=registry.source.pk).update(role_arn=role)
    package = registry.package("pending")
    with outbox.capture(execute=True):
        push = sign(personas["fair"], package, "fairness").pushes[0]
    client = push_service.registry_client_for(PushOutbox.objects.select_related("package__source").get(pk=push.pk))
    assert client.cfg.role_arn == role and client.cfg.source_identity == "fair"
    assert client.client("sts").get_caller_identity()["Arn"].endswith(":assumed-role/GovernanceWriter/fair")
    outbox.drain()
    assert registry.describe("pending")["CustomerMetadataProperties"]["FairnessApproved"] == "true"


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_claim_once(registry: Registry, personas, updates: UpdateCounter, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two workers get the same push at the same moment: the conditional UPDATE lets one through."""
    import threading

    from django.db import connection

    package = registry.package("pending")
    with mock_enqueue():
        push = sign(personas["fair"], package, "fairness").pushes[0]
    barrier = threading.Barrier(2, timeout=10)
    original = push_service._earlier_active

    def both_at_once(p: PushOutbox) -> PushOutbox | None:
        barrier.wait()  # both have read the row as pending before either claims it
        return original(p)

    monkeypatch.setattr(push_service, "_earlier_active", both_at_once)
    states: list[str] = []

    def deliver() -> None:
        try:
            states.append(push_execute(push.pk).state)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(states) == 2
    push.refresh_from_db()
    assert push.state == State.SENT and push.attempts == 1
    assert updates.count == 1


def mock_enqueue() -> Any:
    from unittest import mock

    return mock.patch("registry_app.tasks.push_task.apply_async")
