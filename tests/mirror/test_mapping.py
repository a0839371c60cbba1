"""Pure mapping and change detection (no AWS, no database)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from registry_app.mirror import mapping as sync

ARN = "arn:aws:sagemaker:eu-west-1:111122223333:model-package/credit-risk/7"


def record(**overrides):  # type: ignore[no-untyped-def]
    base = {
        "ModelPackageGroupName": "credit-risk",
        "ModelPackageVersion": 7,
        "ModelPackageArn": ARN,
        "ModelPackageDescription": "XGBoost retrain",
        "CreationTime": "2025-03-13T17:02:11Z",
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": "Approved",
        "ApprovalDescription": "ok",
        "CustomerMetadataProperties": {"owner": "team-risk"},
        "ModelLifeCycle": {"Stage": "Production", "StageStatus": "Approved", "StageDescription": "Go-live"},
        "ModelCard": {
            "ModelCardContent": json.dumps({"intended_uses": {"risk_rating": "High"}}),
            "ModelCardStatus": "Approved",
        },
        "LastModifiedTime": "2025-03-14T09:26:52Z",
        "Tags": [{"Key": "a", "Value": "b"}],
    }
    base.update(overrides)
    return base


def test_package_fields_maps_every_mirrored_field() -> None:
    fields = sync.package_fields(record())
    assert fields["group_name"] == "credit-risk"
    assert fields["version"] == 7
    assert fields["approval_status"] == "Approved"
    assert fields["lifecycle_stage"] == "Production"
    assert fields["lifecycle_stage_status"] == "Approved"
    assert fields["embedded_card_status"] == "Approved"
    assert fields["embedded_card_content"] == {"intended_uses": {"risk_rating": "High"}}
    assert fields["created_at"] == dt.datetime(2025, 3, 13, 17, 2, 11, tzinfo=dt.UTC)
    assert "Tags" not in fields["raw"]


def test_hash_ignores_tags_but_not_status() -> None:
    assert sync.record_hash(record()) == sync.record_hash(record(Tags=[]))
    assert sync.record_hash(record()) != sync.record_hash(record(ModelApprovalStatus="Rejected"))


def test_version_from_arn_when_missing_and_unversioned_rejected() -> None:
    rec = record()
    rec.pop("ModelPackageVersion")
    assert sync.package_fields(rec)["version"] == 7
    with pytest.raises(sync.RecordError, match="unversioned"):
        sync.package_fields(
            record(ModelPackageVersion=None, ModelPackageArn="arn:aws:sagemaker:eu-west-1:1:model-package/solo")
        )
    with pytest.raises(sync.RecordError, match="no ModelPackageArn"):
        sync.package_fields({"ModelPackageVersion": 1})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-14T09:26:52Z", dt.datetime(2025, 3, 14, 9, 26, 52, tzinfo=dt.UTC)),
        ("2022-12-03T00:09:44.893854735Z", dt.datetime(2022, 12, 3, 0, 9, 44, 893854, tzinfo=dt.UTC)),
        (1592411992203.0, dt.datetime(2020, 6, 17, 16, 39, 52, 203000, tzinfo=dt.UTC)),
        (1741944412.456, dt.datetime(2025, 3, 14, 9, 26, 52, 456000, tzinfo=dt.UTC)),
        ("2026-11-24T07:38:03.789000+00:00", dt.datetime(2026, 11, 24, 7, 38, 3, 789000, tzinfo=dt.UTC)),
        (None, None),
    ],
)
def test_parse_time_forms(value, expected) -> None:  # type: ignore[no-untyped-def]
    assert sync.parse_time(value) == expected


def test_parse_time_rejects_junk() -> None:
    with pytest.raises(sync.RecordError):
        sync.parse_time("yesterday")


def test_summary_differs_on_status_and_lifecycle_only() -> None:
    mirror = {
        "approval_status": "PendingManualApproval",
        "package_status": "Completed",
        "description": "d",
        "lifecycle_stage": "",
        "lifecycle_stage_status": "",
    }
    same = {
        "ModelApprovalStatus": "PendingManualApproval",
        "ModelPackageStatus": "Completed",
        "ModelPackageDescription": "d",
    }
    assert not sync.summary_differs(mirror, same)
    assert sync.summary_differs(mirror, {**same, "ModelApprovalStatus": "Approved"})
    assert sync.summary_differs(mirror, {**same, "ModelLifeCycle": {"Stage": "QA", "StageStatus": "InProgress"}})


def test_metrics_sources_lists_every_leaf_with_slot() -> None:
    refs = sync.metrics_sources(
        {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/e.json"}},
            "Bias": {
                "Report": {"ContentType": "application/json", "S3Uri": "s3://b/bias.json", "ContentDigest": "sha256:ab"}
            },
            "Explainability": {"Report": {"ContentType": "text/csv", "S3Uri": "s3://b/x.csv"}},
        }
    )
    assert [(r.slot, r.is_json) for r in refs] == [
        ("Bias.Report", True),
        ("Explainability.Report", False),
        ("ModelQuality.Statistics", True),
    ]
    assert refs[0].content_digest == "sha256:ab"


def test_diff_reports_before_after() -> None:
    changes = sync.diff(
        {"approval_status": "PendingManualApproval", "customer_metadata": {"a": "1"}},
        {"approval_status": "Approved", "customer_metadata": {"a": "1"}},
        ("approval_status", "customer_metadata"),
    )
    assert changes == {"approval_status": ["PendingManualApproval", "Approved"]}


def test_referenced_card_prefers_arn() -> None:
    assert (
        sync.referenced_card({"ModelCardArn": "arn:aws:sagemaker:eu-west-1:1:model-card/card-a", "ModelCardName": "b"})
        == "card-a"
    )
    assert sync.referenced_card({"ModelCardName": " b "}) == "b"
    assert sync.referenced_card({}) == ""


def test_endpoint_variants_follow_model_to_package() -> None:
    config = {
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "m1",
                "InitialVariantWeight": 1.0,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 2,
            }
        ]
    }
    models = {"m1": {"PrimaryContainer": {"ModelPackageName": ARN}}}
    assert sync.endpoint_variants(config, models) == [
        {
            "variant_name": "AllTraffic",
            "model_name": "m1",
            "package_arn": ARN,
            "weight": 1.0,
            "instance_type": "ml.m5.large",
            "instance_count": 2,
        }
    ]


def test_parse_event_handles_documented_sample_and_junk() -> None:
    body = json.dumps(
        {
            "detail-type": "SageMaker Model Package State Change",
            "source": "aws.sagemaker",
            "detail": {"ModelPackageArn": ARN},
        }
    )
    assert sync.parse_event(body) == ("SageMaker Model Package State Change", {"ModelPackageArn": ARN})
    wrapped = json.dumps({"Type": "Notification", "Message": body})
    assert sync.parse_event(wrapped)[1]["ModelPackageArn"] == ARN
    for junk in ("not json", "[]", json.dumps({"detail-type": "x"})):
        with pytest.raises(sync.RecordError):
            sync.parse_event(junk)
