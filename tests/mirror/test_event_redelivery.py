"""The EventBridge consumer deletes a message only after its refresh committed (issue 9 item 5).

A refresh that fails on AWS (throttling, 5xx past botocore's retries) leaves the message to SQS, which
hands it out again after its visibility timeout; a message that keeps failing is recorded on the run
and dropped after ``MAX_RECEIVES`` receives (counted by SQS: ``ApproximateReceiveCount``). The queues
here have a visibility timeout of 0, so the same run receives a message it left again at once.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.mirror.execute import execute_run
from registry_app.models import ModelPackage, RegistrySource, SyncRun
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(aws: None, source: RegistrySource, monkeypatch: pytest.MonkeyPatch, settings: Any) -> dict[str, Any]:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda s: None)
    settings.AWS_MAX_ATTEMPTS = 1  # each describe is one HTTP attempt: the injected errors count exactly
    sm, _ = h.clients()
    h.create_group(sm, "credit-risk")
    arn = h.create_package(sm, "credit-risk")
    sqs = boto3.client("sqs", region_name=h.REGION)
    queue = sqs.create_queue(QueueName="registry-events", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.FULL, trigger="command")
    execute_run(run.pk)
    RegistrySource.objects.filter(pk=source.pk).update(events_queue_url=queue)
    source.refresh_from_db()
    # A metadata-only change, announced by EventBridge.
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"ticket": "GOV-99"})
    event = {
        "version": "0",
        "id": "5f2d1c9e-7a1b-4c57-9d0a-1e2f3a4b5c6d",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2025-03-14T09:26:52Z",
        "region": h.REGION,
        "resources": [arn],
        "detail": {"ModelPackageGroupName": "credit-risk", "ModelPackageVersion": 1, "ModelPackageArn": arn},
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
    return {"sqs": sqs, "queue": queue, "arn": arn}


def consume(source: RegistrySource, describe_errors: int) -> SyncRun:
    client = RegistryClient(SourceConfig.from_source(source))
    h.inject_errors(client.client("sagemaker"), "DescribeModelPackage", [(500, "InternalFailure")] * describe_errors)
    run = SyncRun.objects.create(source=source, mode=SyncRun.Mode.EVENT, trigger="event")
    return execute_run(run.pk, client=client)


def messages_left(sqs: Any, queue: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def test_a_refresh_that_failed_with_a_5xx_leaves_the_message_for_redelivery(setup, source) -> None:  # type: ignore[no-untyped-def]
    run = consume(source, describe_errors=1)  # the first refresh fails, the redelivered one works

    assert ModelPackage.objects.get(arn=setup["arn"]).customer_metadata["ticket"] == "GOV-99"
    assert run.counts["events_retry_later"] == 1 and run.counts["events_applied"] == 1
    assert run.aws_calls["ReceiveMessage"] >= 2 and run.aws_calls["DeleteMessage"] == 1
    assert messages_left(setup["sqs"], setup["queue"]) == 0


def test_a_message_that_keeps_failing_is_recorded_and_dropped_after_five_receives(setup, source) -> None:  # type: ignore[no-untyped-def]
    run = consume(source, describe_errors=50)

    assert run.counts["events_retry_later"] == 4 and run.counts["events_dropped"] == 1
    assert run.aws_calls["DescribeModelPackage"] == 5 and run.aws_calls["DeleteMessage"] == 1
    assert any("dropped after 5 receives" in e["message"] for e in run.errors)
    assert run.status == SyncRun.Status.PARTIAL
    assert messages_left(setup["sqs"], setup["queue"]) == 0
    assert "ticket" not in ModelPackage.objects.get(arn=setup["arn"]).customer_metadata  # the nightly pass's


def test_receives_long_poll_and_ask_for_the_receive_count(source: RegistrySource) -> None:
    """The request, checked by botocore's Stubber against the SQS model."""
    from registry_app.mirror import aws_requests

    client = RegistryClient(SourceConfig.from_source(source))
    queue = "https://sqs.eu-west-1.amazonaws.com/111122223333/registry-events"
    message = {"MessageId": "m1", "ReceiptHandle": "rh", "Body": "{}", "Attributes": {"ApproximateReceiveCount": "3"}}
    expected = {
        "QueueUrl": queue,
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 1,
        "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
    }
    with Stubber(client.client("sqs")) as stubber:
        stubber.add_response("receive_message", {"Messages": [message]}, expected)
        received = aws_requests.receive_event_messages(client, queue, wait_seconds=0)  # raised to 1: long polling
    assert [aws_requests.receive_count(m) for m in received] == [3]
    assert aws_requests.receive_count({"MessageId": "x"}) == 0
