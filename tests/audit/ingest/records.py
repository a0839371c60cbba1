"""CloudTrail records in the documented format (shared/aws-formats.md §2), for the audit-ingest tests."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from typing import Any

ACCOUNT = "111122223333"
REGION = "eu-west-1"
SAGEMAKER = "sagemaker.amazonaws.com"


def arn_package(group: str, version: int, *, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/{version}"


def arn_group(group: str, *, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:sagemaker:{region}:{account}:model-package-group/{group}"


# ---------------------------------------------------------------------------------------------- identities


def iam_user(name: str = "Alice", account: str = ACCOUNT) -> dict[str, Any]:
    """§2.2 IAM user [VERBATIM shape]."""
    return {
        "type": "IAMUser",
        "principalId": "AIDAJ45Q7YFFAREXAMPLE",
        "arn": f"arn:aws:iam::{account}:user/{name}",
        "accountId": account,
        "accessKeyId": "",
        "userName": name,
    }


def assumed_role(
    role: str = "RoleToBeAssumed",
    session: str = "MySessionName",
    *,
    source_identity: str | None = None,
    account: str = ACCOUNT,
    path: str = "",
) -> dict[str, Any]:
    """§2.2 assumed role (optionally with ``sessionContext.sourceIdentity``)."""
    context: dict[str, Any] = {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAIDPPEZS35WEXAMPLE",
            "arn": f"arn:aws:iam::{account}:role/{path}{role}",
            "accountId": account,
            "userName": role,
        },
        "webIdFederationData": {},
        "attributes": {"mfaAuthenticated": "false", "creationDate": "2025-03-14T09:01:02Z"},
    }
    if source_identity is not None:
        context["sourceIdentity"] = source_identity
    return {
        "type": "AssumedRole",
        "principalId": f"AROAIDPPEZS35WEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
        "sessionContext": context,
    }


def studio_user(profile: str) -> dict[str, Any]:
    """A Studio user: the execution role's generic ``SageMaker`` session, the profile as sourceIdentity."""
    return assumed_role(
        "AmazonSageMaker-ExecutionRole-Risk", "SageMaker", source_identity=profile, path="service-role/"
    )


def sso_user(user: str, permission_set: str = "DataScientist") -> dict[str, Any]:
    """IAM Identity Center through a permission set: an ``AWSReservedSSO_*`` role session named after the user."""
    return assumed_role(
        f"AWSReservedSSO_{permission_set}_0123456789abcdef", user, path="aws-reserved/sso.amazonaws.com/"
    )


def identity_center_user(user_id: str = "544894e8-80c1-707f-60e3-3ba6510dfac1", user_name: str = "") -> dict[str, Any]:
    """§ userIdentity for a request made on behalf of an IAM Identity Center user."""
    identity: dict[str, Any] = {
        "type": "IdentityCenterUser",
        "accountId": ACCOUNT,
        "onBehalfOf": {
            "userId": user_id,
            "identityStoreArn": f"arn:aws:identitystore::{ACCOUNT}:identitystore/d-9067642ac7",
        },
        "credentialId": "EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE",
    }
    if user_name:
        identity["userName"] = user_name
    return identity


def aws_service(principal: str = "sagemaker.amazonaws.com") -> dict[str, Any]:
    return {"type": "AWSService", "invokedBy": principal}


# ---------------------------------------------------------------------------------------------- records


def record(
    event_name: str,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    *,
    identity: dict[str, Any] | None = None,
    when: dt.datetime | str = "2025-03-14T09:26:52Z",
    event_id: str | None = None,
    error_code: str | None = None,
    source: str = SAGEMAKER,
    region: str = REGION,
    account: str = ACCOUNT,
    read_only: bool = False,
) -> dict[str, Any]:
    """The §2.4 envelope (eventVersion 1.09) around the given call."""
    if isinstance(when, dt.datetime):
        when = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity if identity is not None else studio_user("alice"),
        "eventTime": when,
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "Boto3/1.37.0 md/Botocore#1.37.0 ua/2.1 os/linux lang/python#3.11.7",
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id or str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"api.sagemaker.{region}.amazonaws.com",
        },
    }
    if error_code:
        body["errorCode"] = error_code
        body["errorMessage"] = f"{error_code}: example"
        body["responseElements"] = None
    return body


def create_group(group: str, **kw: Any) -> dict[str, Any]:
    return record(
        "CreateModelPackageGroup",
        {"modelPackageGroupName": group, "modelPackageGroupDescription": f"{group} models"},
        {"modelPackageGroupArn": arn_group(group)},
        **kw,
    )


def create_package(group: str, version: int, **kw: Any) -> dict[str, Any]:
    return record(
        "CreateModelPackage",
        {
            "modelPackageGroupName": group,
            "modelPackageDescription": "XGBoost retrain",
            "modelApprovalStatus": "PendingManualApproval",
            "inferenceSpecification": {
                "containers": [
                    {
                        "image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                        "modelDataUrl": f"s3://ml-artifacts/{group}/{version}/model.tar.gz",
                    }
                ],
                "supportedContentTypes": ["text/csv"],
                "supportedResponseMIMETypes": ["text/csv"],
            },
            "customerMetadataProperties": {"owner": "team-risk"},
            "clientToken": str(uuid.uuid4()),
        },
        {"modelPackageArn": arn_package(group, version)},
        **kw,
    )


def approve(group: str, version: int, status: str = "Approved", **kw: Any) -> dict[str, Any]:
    arn = arn_package(group, version)
    return record(
        "UpdateModelPackage",
        {"modelPackageArn": arn, "modelApprovalStatus": status, "approvalDescription": "Meets AUC >= 0.80 gate"},
        {"modelPackageArn": arn},
        **kw,
    )


def create_model(model: str, package: str, **kw: Any) -> dict[str, Any]:
    return record(
        "CreateModel",
        {
            "modelName": model,
            "primaryContainer": {"modelPackageName": package},
            "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/SageMakerDeployRole",
        },
        {"modelArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{model.lower()}"},
        **kw,
    )


def create_config(config: str, variants: list[tuple[str, str, float]], **kw: Any) -> dict[str, Any]:
    return record(
        "CreateEndpointConfig",
        {
            "endpointConfigName": config,
            "productionVariants": [
                {
                    "variantName": variant,
                    "modelName": model,
                    "initialInstanceCount": 1,
                    "instanceType": "ml.m5.large",
                    "initialVariantWeight": weight,
                }
                for variant, model, weight in variants
            ],
        },
        {"endpointConfigArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint-config/{config.lower()}"},
        **kw,
    )


def endpoint_call(name: str, endpoint: str, config: str | None = None, **kw: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"endpointName": endpoint}
    if config is not None:
        request["endpointConfigName"] = config
    response = {"endpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint.lower()}"}
    return record(name, request, response if name != "DeleteEndpoint" else None, **kw)


def update_weights(endpoint: str, weights: dict[str, float], **kw: Any) -> dict[str, Any]:
    return record(
        "UpdateEndpointWeightsAndCapacities",
        {
            "endpointName": endpoint,
            "desiredWeightsAndCapacities": [{"variantName": v, "desiredWeight": w} for v, w in weights.items()],
        },
        {"endpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint.lower()}"},
        **kw,
    )


def describe(**kw: Any) -> dict[str, Any]:
    """A read-only call the dashboard's own sync makes every minute (never kept)."""
    return record(
        "DescribeModelPackage", {"modelPackageName": arn_package("credit-risk", 1)}, None, read_only=True, **kw
    )


# ---------------------------------------------------------------------------------------------- files


def gz(records: list[dict[str, Any]]) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode())


def log_key(
    when: dt.datetime,
    unique: str = "0Sfy6m9f6iBzmoPF",
    *,
    account: str = ACCOUNT,
    region: str = REGION,
    prefix: str = "",
    org: str = "",
) -> str:
    head = f"{prefix.strip('/')}/" if prefix else ""
    org_part = f"{org}/" if org else ""
    stamp = when.strftime("%Y%m%dT%H%MZ")
    return (
        f"{head}AWSLogs/{org_part}{account}/CloudTrail/{region}/{when:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz"
    )


def lookup_event(rec: dict[str, Any]) -> dict[str, Any]:
    """A LookupEvents ``Event`` wrapping ``rec`` (``CloudTrailEvent`` is a JSON string)."""
    when = dt.datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00"))
    identity = rec.get("userIdentity") or {}
    return {
        "EventId": rec["eventID"],
        "EventName": rec["eventName"],
        "ReadOnly": "true" if rec.get("readOnly") else "false",
        "AccessKeyId": identity.get("accessKeyId", ""),
        "EventTime": when,
        "EventSource": rec["eventSource"],
        "Username": (identity.get("arn") or "").rsplit("/", 1)[-1],
        "Resources": [],
        "CloudTrailEvent": json.dumps(rec),
    }
