"""``manage.py check_registry_source``: per read permission allowed / denied / not checkable.

Against a moto server (``AWS_ENDPOINT_URL``) everything moto implements is allowed and
LookupEvents, which moto lacks, is "not checkable"; denials come from stubbed AccessDenied
answers, shaped like SageMaker's."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY
from django.core.management import CommandError, call_command

from registry_app.aws import permissions
from registry_app.aws.permissions import ALLOWED, DENIED, NOT_CHECKABLE, check_source
from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from registry_app.models import RegistrySource
from tests.aws.contracts import ACCOUNT, REGION, Stubs, arn
from tests.aws_helpers import BINARY_REPORT, create_group, create_package, make_bucket, put_json

pytestmark = pytest.mark.django_db
MOTO_ACCOUNT = "123456789012"


def run_command(name: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("check_registry_source", name, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def status_of(output: str, action: str) -> str:
    line = next(line for line in output.splitlines() if line.strip().startswith(action + " "))
    for status in (NOT_CHECKABLE, ALLOWED, DENIED):
        if status in line:
            return status
    raise AssertionError(line)


@pytest.mark.integration
def test_against_a_moto_server_every_read_is_allowed_and_lookup_events_not_checkable(moto_server: str) -> None:
    sm = boto3.client("sagemaker", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    make_bucket(s3)
    make_bucket(s3, "trail-bucket")
    create_group(sm, "credit-risk", tags={"team": "risk"})
    create_package(sm, "credit-risk", report_uri=put_json(s3, "credit-risk/1/evaluation.json", BINARY_REPORT))
    queue = sqs.create_queue(QueueName="registry-events")["QueueUrl"]
    role = make_role("GovernanceReader", trust_policy())  # the documented trust policy
    RegistrySource.objects.create(
        name="prod",
        region=REGION,
        role_arn=role,
        external_id="ext-123",
        cloudtrail_bucket="trail-bucket",
        events_queue_url=queue,
    )

    output, error = run_command("prod")

    assert error is None, output
    for action in (
        "sts:AssumeRole",
        "sts:SetSourceIdentity",
        "sagemaker:ListModelPackageGroups",
        "sagemaker:Search",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListTags",
        "sagemaker:DescribeModelPackage",
        "s3:GetObject",
        "s3:ListBucket",
        "sqs:GetQueueAttributes",
    ):
        assert status_of(output, action) == ALLOWED, (action, output)
    assert status_of(output, "cloudtrail:LookupEvents") == NOT_CHECKABLE
    assert status_of(output, "sagemaker:UpdateModelPackage") == NOT_CHECKABLE  # a write: never tried
    assert status_of(output, "sqs:ReceiveMessage") == NOT_CHECKABLE  # would consume events
    assert "No permission denied." in output
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])


@pytest.mark.integration
def test_a_role_trusting_without_set_source_identity_fails_the_check(moto_server: str) -> None:
    """The AWS-faithful fake refuses a SourceIdentity the trust policy does not allow, as STS does:
    the sync's AssumeRole works, every push would fail, and the check says so."""
    policy = trust_policy()
    policy["Statement"][0]["Action"] = "sts:AssumeRole"
    RegistrySource.objects.create(name="prod", region=REGION, role_arn=make_role("ReaderOnly", policy))

    output, error = run_command("prod")

    assert error is not None and "sts:SetSourceIdentity" in str(error)
    assert status_of(output, "sts:AssumeRole") == ALLOWED
    assert status_of(output, "sts:SetSourceIdentity") == DENIED
    assert "trust-policy.json" in output and '"sts:SetSourceIdentity"' in output.split("Add these statements", 1)[1]


def trust_policy() -> dict[str, Any]:
    text = (Path(__file__).resolve().parents[2] / "docs" / "iam" / "trust-policy.json").read_text(encoding="utf-8")
    return json.loads(text.replace("DASHBOARD_ACCOUNT_ID", MOTO_ACCOUNT).replace("DASHBOARD_WORKER_ROLE", "worker"))


def make_role(name: str, policy: dict[str, Any]) -> str:
    iam = boto3.client("iam", region_name=REGION)
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy))["Role"]["Arn"]


def denied(message_action: str, resource: str) -> str:
    return (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/GovernanceReader/governance-dashboard is not authorized to "
        f"perform: {message_action} on resource: {resource} because no identity-based policy allows the "
        f"{message_action} action"
    )


def stub_a_source_denied_search_and_list_tags(stubs: Stubs) -> None:
    group_arn = arn("model-package-group", "credit-risk")
    package_arn = arn("model-package", "credit-risk/1")
    created = "2025-03-01T09:30:00Z"
    stubs.ok(
        "sts", "GetCallerIdentity", {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/w", "UserId": "AIDA"}, {}
    )
    group = {
        "ModelPackageGroupName": "credit-risk",
        "ModelPackageGroupArn": group_arn,
        "CreationTime": created,
        "ModelPackageGroupStatus": "Completed",
    }
    stubs.ok("sagemaker", "ListModelPackageGroups", {"ModelPackageGroupSummaryList": [group]}, {"MaxResults": 1})
    stubs.error(
        "sagemaker",
        "Search",
        "AccessDeniedException",
        denied("sagemaker:Search", "*"),
        expected={"Resource": "ModelPackage", "MaxResults": 1},
    )
    summary = {
        "ModelPackageArn": package_arn,
        "ModelPackageGroupName": "credit-risk",
        "ModelPackageVersion": 1,
        "CreationTime": created,
        "ModelPackageStatus": "Completed",
    }
    stubs.ok("sagemaker", "ListModelPackages", {"ModelPackageSummaryList": [summary]}, {"MaxResults": 1})
    stubs.ok(
        "sagemaker", "DescribeModelPackageGroup", {**group, "CreatedBy": {}}, {"ModelPackageGroupName": "credit-risk"}
    )
    stubs.error(
        "sagemaker",
        "ListTags",
        "AccessDeniedException",
        denied("sagemaker:ListTags", group_arn),
        expected={"ResourceArn": group_arn, "MaxResults": 50},
    )
    metrics = {
        "ModelQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri": "s3://ml-artifacts/credit-risk/1/evaluation.json",
            }
        }
    }
    described = {
        **summary,
        "ModelPackageName": "credit-risk",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelMetrics": metrics,
    }
    stubs.ok("sagemaker", "DescribeModelPackage", described, {"ModelPackageName": package_arn})
    stubs.ok("sagemaker", "ListModelCards", {"ModelCardSummaries": []}, {"MaxResults": 1})
    stubs.ok("sagemaker", "ListEndpoints", {"Endpoints": []}, {"MaxResults": 1})
    get = {"Bucket": "ml-artifacts", "Key": "credit-risk/1/evaluation.json", "Range": "bytes=0-0"}
    stubs.ok("s3", "GetObject", {"Body": StreamingBody(io.BytesIO(b"{"), 1)}, get)
    stubs.ok("cloudtrail", "LookupEvents", {"Events": []}, {"StartTime": ANY, "EndTime": ANY, "MaxResults": 1})


def test_denied_reads_are_reported_with_the_statement_to_add(db: None) -> None:
    client = RegistryClient(SourceConfig(name="prod", region=REGION))
    stubs = Stubs(client.client)
    stub_a_source_denied_search_and_list_tags(stubs)

    results = {r.action: r for r in check_source(client.cfg, client_factory=lambda cfg: client)}
    stubs.done()

    assert {a for a, r in results.items() if r.status == DENIED} == {"sagemaker:Search", "sagemaker:ListTags"}
    assert results["sagemaker:Search"].statement == {
        "Sid": "SagemakerSearch",
        "Effect": "Allow",
        "Action": "sagemaker:Search",
        "Resource": "*",
    }
    assert results["sagemaker:ListTags"].statement["Resource"] == permissions.RESOURCES["sagemaker:ListTags"]
    assert results["sagemaker:ListTags"].policy == "read-only-policy.json"
    assert results["s3:GetObject"].status == ALLOWED and results["cloudtrail:LookupEvents"].status == ALLOWED
    assert results["sts:SetSourceIdentity"].status == NOT_CHECKABLE  # no role: nothing to assume
    assert results["sqs:GetQueueAttributes"].status == NOT_CHECKABLE


def test_the_command_exits_non_zero_and_prints_the_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    RegistrySource.objects.create(name="prod", region=REGION)
    client = RegistryClient(SourceConfig(name="prod", region=REGION))
    stubs = Stubs(client.client)
    stub_a_source_denied_search_and_list_tags(stubs)
    monkeypatch.setattr(permissions, "RegistryClient", lambda cfg, **_: client)

    output, error = run_command("prod")
    stubs.done()

    assert error is not None and "2 permission(s) denied" in str(error)
    assert status_of(output, "sagemaker:Search") == DENIED and status_of(output, "sagemaker:ListTags") == DENIED
    statements = output.split("Add these statements", 1)[1]
    assert '"Action": "sagemaker:Search"' in statements and '"Resource": "*"' in statements
    assert json.dumps("arn:aws:sagemaker:*:*:model-package-group/*") in statements


def test_an_unknown_source_is_a_command_error(db: None) -> None:
    with pytest.raises(CommandError, match="no registry source named 'nope'"):
        call_command("check_registry_source", "nope", stdout=io.StringIO())


def test_a_role_whose_trust_policy_lacks_set_source_identity_is_denied(monkeypatch: pytest.MonkeyPatch) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/GovernanceWriter"
    cfg = SourceConfig(name="prod", region=REGION, role_arn=role, external_id="ext-123")
    from registry_app.aws.errors import RoleAssumptionError

    def factory(c: SourceConfig) -> Any:
        class Fake:
            def account_id(self) -> str:
                if c.source_identity:
                    raise RoleAssumptionError(
                        "AssumeRole denied.", kind="trust-policy", fix="allow sts:SetSourceIdentity"
                    )
                return ACCOUNT

            def _call(self, *args: Any, **kwargs: Any) -> dict:
                return {}

        return Fake()

    results = {r.action: r for r in check_source(cfg, client_factory=factory)}

    assert results["sts:AssumeRole"].status == ALLOWED
    assert results["sts:SetSourceIdentity"].status == DENIED
    assert results["sts:SetSourceIdentity"].statement["Action"] == ["sts:AssumeRole", "sts:SetSourceIdentity"]
    assert results["sts:SetSourceIdentity"].policy == "trust-policy.json"


def test_in_process_moto_lacks_lookup_events_and_that_is_not_checkable(aws: None) -> None:
    results = {r.action: r for r in check_source(SourceConfig(name="prod", region=REGION))}

    assert results["cloudtrail:LookupEvents"].status == NOT_CHECKABLE
    assert "does not implement" in results["cloudtrail:LookupEvents"].detail
    assert results["sagemaker:Search"].status == ALLOWED
    assert not [r for r in results.values() if r.status == DENIED]
