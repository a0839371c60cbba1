"""Shared helpers for the AWS-faithful fake's tests: a registry client and IAM/STS shortcuts."""

from __future__ import annotations

import json
from typing import Any

import boto3

REGION = "eu-west-1"
ACCOUNT = "123456789012"
GROUP = "credit-risk"
CONTAINER = {"Image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"}
INFERENCE = {
    "Containers": [CONTAINER],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


class Registry:
    """A SageMaker client plus shortcuts for the registry calls the tests repeat."""

    def __init__(self, **client_kwargs: Any) -> None:
        self.sm = boto3.client("sagemaker", region_name=REGION, **client_kwargs)
        self.groups: set[str] = set()

    def group(self, name: str = GROUP) -> str:
        if name not in self.groups:
            self.sm.create_model_package_group(ModelPackageGroupName=name)
            self.groups.add(name)
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/{name}"

    def package(self, group: str = GROUP, **params: Any) -> str:
        self.group(group)
        defaults: dict[str, Any] = {"ModelApprovalStatus": "PendingManualApproval", "InferenceSpecification": INFERENCE}
        answer = self.sm.create_model_package(ModelPackageGroupName=group, **{**defaults, **params})
        return str(answer["ModelPackageArn"])

    def describe(self, arn: str) -> dict[str, Any]:
        record: dict[str, Any] = self.sm.describe_model_package(ModelPackageName=arn)
        return record

    def search(self, **params: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.sm.search(Resource=params.pop("Resource", "ModelPackage"), **params)
        return answer

    def arns(self, answer: dict[str, Any], resource: str = "ModelPackage") -> list[str]:
        return [r[resource][f"{resource}Arn"] for r in answer["Results"]]


def trust_policy(*actions: str, condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    statement["Action"] = list(actions)
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def make_role(name: str, policy: str) -> str:
    iam = boto3.client("iam", region_name=REGION)
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy)["Role"]["Arn"]
    return arn


def session_client(credentials: dict[str, Any], service: str, **kwargs: Any) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        **kwargs,
    )
