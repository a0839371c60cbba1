"""Small helpers that build registry content in moto for tests (tests may import boto3)."""

from __future__ import annotations

import json
from typing import Any

import boto3

REGION = "eu-west-1"
BUCKET = "ml-artifacts"

BINARY_REPORT = {
    "binary_classification_metrics": {
        "auc": {"value": 0.91, "standard_deviation": 0.01},
        "accuracy": {"value": 0.88, "standard_deviation": "NaN"},
        "confusion_matrix": {"0": {"0": 90, "1": 10}, "1": {"0": 5, "1": 45}},
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": [0, 0.1, 1],
            "true_positive_rates": [0, 0.8, 1],
        },
    }
}
REGRESSION_REPORT = {"regression_metrics": {"mse": {"value": 3.2, "standard_deviation": 0.4}}}


def clients(region: str = REGION) -> tuple[Any, Any]:
    return boto3.client("sagemaker", region_name=region), boto3.client("s3", region_name=region)


def make_bucket(s3: Any, bucket: str = BUCKET, region: str = REGION) -> None:
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def put_json(s3: Any, key: str, body: Any, bucket: str = BUCKET) -> str:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def create_group(sm: Any, name: str, description: str = "", tags: dict[str, str] | None = None) -> str:
    kwargs: dict[str, Any] = {"ModelPackageGroupName": name, "ModelPackageGroupDescription": description or name}
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return sm.create_model_package_group(**kwargs)["ModelPackageGroupArn"]


def create_package(
    sm: Any,
    group: str,
    *,
    status: str = "PendingManualApproval",
    report_uri: str | None = None,
    metadata: dict[str, str] | None = None,
    description: str = "candidate",
    extra_metrics: dict[str, Any] | None = None,
) -> str:
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": description,
        "ModelApprovalStatus": status,
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/xgboost-inference:1.7-1",
                    "ImageDigest": "sha256:" + "ab" * 32,
                    "ModelDataUrl": f"s3://{BUCKET}/{group}/model.tar.gz",
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "CustomerMetadataProperties": metadata or {"GitCommitSha": "0123abc"},
    }
    metrics: dict[str, Any] = {}
    if report_uri:
        metrics["ModelQuality"] = {"Statistics": {"ContentType": "application/json", "S3Uri": report_uri}}
    if extra_metrics:
        metrics.update(extra_metrics)
    if metrics:
        kwargs["ModelMetrics"] = metrics
    return sm.create_model_package(**kwargs)["ModelPackageArn"]


def set_status(sm: Any, arn: str, status: str, description: str = "") -> None:
    """moto blanks omitted fields on update: always send status, description and metadata together."""
    current = sm.describe_model_package(ModelPackageName=arn)
    sm.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus=status,
        ApprovalDescription=description or current.get("ApprovalDescription") or "",
        CustomerMetadataProperties=current.get("CustomerMetadataProperties") or {"k": "v"},
    )


def delete_package_in_moto(arn: str, region: str = REGION, account: str = "123456789012") -> None:
    """moto does not implement DeleteModelPackage: remove it from the backend directly."""
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[account][region]
    backend.model_packages.pop(arn)


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        yield self._body


def inject_errors(boto_client: Any, operation: str, errors: list[tuple[int, str]]) -> list[int]:
    """Answer the next HTTP attempts of ``operation`` with errors, before anything is sent.

    Registered on botocore's ``before-send`` event, so botocore's own retry logic sees the
    errors exactly as if AWS had returned them. ``errors`` holds (status, error code) pairs;
    the code ``Timeout`` raises a read timeout instead. Returns a list that counts every
    attempt seen (injected or not).
    """
    from botocore.awsrequest import AWSResponse
    from botocore.exceptions import ReadTimeoutError

    pending = list(errors)
    attempts: list[int] = []

    def handler(request: Any, **_: Any) -> Any:
        attempts.append(1)
        if not pending:
            return None
        status, code = pending.pop(0)
        if code == "Timeout":
            raise ReadTimeoutError(endpoint_url=request.url)
        body = json.dumps({"__type": code, "message": f"injected {code}"}).encode()
        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.1"}, _RawBody(body))

    service = boto_client.meta.service_model.service_name
    boto_client.meta.events.register(f"before-send.{service}.{operation}", handler)
    return attempts
