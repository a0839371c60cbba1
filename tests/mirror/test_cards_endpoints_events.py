"""Standalone model cards, endpoints (endpoint → config → model → package) and EventBridge events."""

from __future__ import annotations

import json

import boto3
import pytest

from registry_app.mirror.execute import sync_source
from registry_app.models import Endpoint, ModelCard, ModelPackage, SyncRun
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db

CARD = {
    "model_overview": {"model_description": "PD model", "model_owner": "risk"},
    "intended_uses": {"purpose_of_model": "<script>alert(1)</script>", "risk_rating": "High"},
}


@pytest.fixture
def registry(aws):  # type: ignore[no-untyped-def]
    sm, s3 = h.clients()
    h.make_bucket(s3)
    h.create_group(sm, "credit-risk")
    sm.create_model_card(ModelCardName="credit-risk-card", Content=json.dumps(CARD), ModelCardStatus="PendingReview")
    sm.create_model_card(ModelCardName="house-price", Content=json.dumps(CARD), ModelCardStatus="Draft")
    approved = h.create_package(sm, "credit-risk", status="Approved", metadata={"ModelCardName": "credit-risk-card"})
    pending = h.create_package(sm, "credit-risk")
    h.create_group(sm, "house-price")
    house = h.create_package(sm, "house-price")  # linked by the card named like the group
    sm.create_model(
        ModelName="credit-v1",
        PrimaryContainer={"ModelPackageName": approved},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
    )
    sm.create_endpoint_config(
        EndpointConfigName="credit-cfg",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "credit-v1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sm.create_endpoint(EndpointName="credit-prod", EndpointConfigName="credit-cfg")
    return sm, {"approved": approved, "pending": pending, "house": house}


def test_full_sync_links_cards_and_endpoints(registry, source) -> None:  # type: ignore[no-untyped-def]
    sm, arns = registry
    run = sync_source(source, mode=SyncRun.Mode.FULL)
    assert run.status == SyncRun.Status.SUCCEEDED, (run.error, run.errors)
    card = ModelCard.objects.get(name="credit-risk-card")
    assert (card.status, card.version) == ("PendingReview", 1)
    assert card.content["intended_uses"]["purpose_of_model"] == "<script>alert(1)</script>"
    assert ModelPackage.objects.get(arn=arns["approved"]).model_card == card
    assert ModelPackage.objects.get(arn=arns["house"]).model_card.name == "house-price"
    assert ModelPackage.objects.get(arn=arns["pending"]).model_card is None
    endpoint = Endpoint.objects.get(name="credit-prod")
    variant = endpoint.variants.get()
    assert variant.package.arn == arns["approved"]
    assert variant.weight == 1.0
    # A card status change is picked up by the cards-and-endpoints pass; unchanged ones are not re-described.
    sm.update_model_card(ModelCardName="credit-risk-card", ModelCardStatus="Approved")
    run = sync_source(source, mode=SyncRun.Mode.ENDPOINTS)
    assert ModelCard.objects.get(name="credit-risk-card").status == "Approved"
    assert run.aws_calls.get("DescribeModelCard") == 1
    assert "DescribeEndpoint" not in run.aws_calls


def test_eventbridge_event_refreshes_just_that_package(registry, source) -> None:  # type: ignore[no-untyped-def]
    sm, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    sqs = boto3.client("sqs", region_name=h.REGION)
    queue = sqs.create_queue(QueueName="registry-events")["QueueUrl"]
    source.events_queue_url = queue
    source.save(update_fields=["events_queue_url"])
    # A metadata-only change (invisible to the incremental listing) announced by EventBridge.
    current = sm.describe_model_package(ModelPackageName=arns["pending"])
    sm.update_model_package(
        ModelPackageArn=arns["pending"],
        ModelApprovalStatus=current["ModelApprovalStatus"],
        CustomerMetadataProperties={**current["CustomerMetadataProperties"], "ticket": "GOV-1234"},
    )
    event = {  # the documented sample envelope, pointing at our package
        "version": "0",
        "id": "844e2571-85d4-695f-b930-0153b71dcb42",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2021-02-24T17:00:14Z",
        "region": h.REGION,
        "resources": [arns["pending"]],
        "detail": {
            "ModelPackageGroupName": "credit-risk",
            "ModelPackageVersion": 2,
            "ModelPackageArn": arns["pending"],
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": "PendingManualApproval",
            "LastModifiedTime": "2021-02-24T17:00:14Z",
        },
    }
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event))  # EventBridge may deliver twice
    sqs.send_message(QueueUrl=queue, MessageBody="this is not an event")
    run = sync_source(source, mode=SyncRun.Mode.EVENT)
    pkg = ModelPackage.objects.get(arn=arns["pending"])
    assert pkg.customer_metadata["ticket"] == "GOV-1234"
    assert pkg.observations.filter(change="updated").count() == 1  # the duplicate changed nothing
    assert run.counts["events_applied"] == 2
    assert run.aws_calls["DescribeModelPackage"] == 2
    assert any("discarded" in e["message"] for e in run.errors)
    assert (
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )
