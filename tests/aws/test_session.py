"""Pushes through a source's role: the names STS gets, and the errors when the role refuses a
SourceIdentity. SageMaker is moto (faithful for DescribeModelPackage); STS is botocore's Stubber
on the STS client the session builds, so every AssumeRole is checked against the STS model."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY

from registry_app.aws.errors import AccessDeniedError, RetryableAwsError, RoleAssumptionError
from registry_app.aws.identity import fold_identity
from registry_app.aws.sagemaker import RegistryClient
from registry_app.aws.session import SourceConfig
from tests.aws.contracts import ACCOUNT, REGION, Stubs
from tests.aws_helpers import clients, create_group, create_package

ROLE = f"arn:aws:iam::{ACCOUNT}:role/GovernanceWriter"
CREDENTIALS = {
    "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
    "SecretAccessKey": "s" * 40,
    "SessionToken": "t" * 40,
    "Expiration": dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
}


@pytest.fixture
def sts(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubs]:
    """Every STS client boto3 builds in this test is one stubbed client (old and new code alike)."""
    stubbed = boto3.Session(region_name=REGION).client("sts")
    original = boto3.Session.client

    def client(self: boto3.Session, service: str, *args: Any, **kwargs: Any) -> Any:
        return stubbed if service == "sts" else original(self, service, *args, **kwargs)

    monkeypatch.setattr(boto3.Session, "client", client)
    stubs = Stubs(lambda service: stubbed)
    yield stubs
    stubs.done()


@pytest.fixture
def package_arn(aws: None) -> str:
    sm, _ = clients()
    create_group(sm, "credit-risk")
    return create_package(sm, "credit-risk")


def push_client(username: str) -> RegistryClient:
    cfg = SourceConfig(name="prod", region=REGION, role_arn=ROLE, external_id="ext-123", source_identity=username)
    return RegistryClient(cfg)


def assume(username: str) -> dict[str, Any]:
    folded = fold_identity(username)
    return {
        "RoleArn": ROLE,
        "RoleSessionName": folded,
        "DurationSeconds": 3600,
        "ExternalId": "ext-123",
        "SourceIdentity": folded,
    }


def granted(username: str) -> dict[str, Any]:
    folded = fold_identity(username)
    return {
        "Credentials": CREDENTIALS,
        "AssumedRoleUser": {"AssumedRoleId": f"AROAEXAMPLE:{folded}", "Arn": f"{ROLE}/{folded}"},
    }


def test_a_push_by_a_non_ascii_user_assumes_the_role_with_a_valid_identity(sts: Stubs, package_arn: str) -> None:
    """Fails on the old code: the session name and source identity ``josé.müller`` broke STS's
    ASCII pattern, so every push by that person failed."""
    sts.ok("sts", "AssumeRole", granted("josé.müller"), assume("josé.müller"))

    record = push_client("josé.müller").describe_package(package_arn)

    assert record["ModelPackageArn"] == package_arn
    assert fold_identity("josé.müller").startswith("jose.muller-")


def test_a_trust_policy_without_set_source_identity_names_the_fix(sts: Stubs, package_arn: str) -> None:
    """Fails on the old code: the denied AssumeRole surfaced as ``AccessDeniedError`` of the
    *SageMaker* operation (which the sync reads as "Search denied, fall back"), naming no fix."""
    message = (
        f"User: arn:aws:iam::{ACCOUNT}:user/governance-worker is not authorized to perform: "
        f"sts:SetSourceIdentity on resource: {ROLE}"
    )
    sts.error("sts", "AssumeRole", "AccessDenied", message, status=403, expected=assume("alice"))
    sts.ok(
        "sts",
        "GetCallerIdentity",
        {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/governance-worker", "UserId": "AIDA"},
        {},
    )

    with pytest.raises(RoleAssumptionError) as caught:
        push_client("alice").describe_package(package_arn)

    error = caught.value
    assert error.kind == "trust-policy" and error.operation == "AssumeRole" and not error.retryable
    assert not isinstance(error, AccessDeniedError)
    assert "sts:SetSourceIdentity" in error.fix and "docs/iam/trust-policy.json" in error.fix
    assert "role chaining" not in error.fix  # the worker is an IAM user: no chain


def test_a_worker_running_as_a_chained_role_session_is_told_so(sts: Stubs, package_arn: str) -> None:
    worker = f"arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/build-42"
    message = f"User: {worker} is not authorized to perform: sts:SetSourceIdentity on resource: {ROLE}"
    sts.error("sts", "AssumeRole", "AccessDenied", message, status=403, expected=assume("alice"))
    sts.ok("sts", "GetCallerIdentity", {"Account": ACCOUNT, "Arn": worker, "UserId": "AROA:build-42"}, {})

    with pytest.raises(RoleAssumptionError) as caught:
        push_client("alice").describe_package(package_arn)

    assert worker in caught.value.fix and "role chaining" in caught.value.fix


def test_a_source_identity_already_set_in_the_chain_is_a_role_chain_error(sts: Stubs, package_arn: str) -> None:
    message = "Cannot set a different SourceIdentity: the source identity of this role session is already set."
    sts.error("sts", "AssumeRole", "AccessDenied", message, status=403, expected=assume("alice"))
    sts.ok(
        "sts", "GetCallerIdentity", {"Account": ACCOUNT, "Arn": "arn:aws:sts::1:assumed-role/a/b", "UserId": "x"}, {}
    )

    with pytest.raises(RoleAssumptionError) as caught:
        push_client("alice").describe_package(package_arn)

    assert caught.value.kind == "role-chain" and "no source identity" in caught.value.fix


def test_a_sync_without_source_identity_denied_the_role_names_the_trust_policy(sts: Stubs, package_arn: str) -> None:
    message = f"User: arn:aws:iam::{ACCOUNT}:user/w is not authorized to perform: sts:AssumeRole on resource: {ROLE}"
    expected = {"RoleArn": ROLE, "RoleSessionName": "governance-dashboard", "DurationSeconds": 3600, "ExternalId": ANY}
    sts.error("sts", "AssumeRole", "AccessDenied", message, status=403, expected=expected)

    with pytest.raises(RoleAssumptionError) as caught:
        push_client("").describe_package(package_arn)

    assert caught.value.kind == "denied" and "trust policy" in caught.value.fix


def test_a_throttled_assume_role_stays_retryable(sts: Stubs, package_arn: str, settings: Any) -> None:
    settings.AWS_MAX_ATTEMPTS = 1  # no botocore retry: the throttle reaches us at once
    sts.error("sts", "AssumeRole", "Throttling", "Rate exceeded", expected=assume("alice"))

    with pytest.raises(RetryableAwsError):
        push_client("alice").describe_package(package_arn)


# --- the same through the AWS-faithful fake's STS (its name rules and trust-policy evaluation) ---


def fake_role(name: str, actions: list[str]) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": actions}
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    return boto3.client("iam", region_name=REGION).create_role(RoleName=name, AssumeRolePolicyDocument=document)[
        "Role"
    ]["Arn"]


def test_through_the_fake_a_non_ascii_push_assumes_a_role_that_trusts_set_source_identity(package_arn: str) -> None:
    role = fake_role("GovernanceWriter", ["sts:AssumeRole", "sts:SetSourceIdentity"])
    client = RegistryClient(SourceConfig(name="prod", region=REGION, role_arn=role, source_identity="Zoë Saldaña"))

    assert client.describe_package(package_arn)["ModelPackageArn"] == package_arn


def test_through_the_fake_a_trust_policy_without_set_source_identity_is_named(package_arn: str) -> None:
    role = fake_role("ReaderOnly", ["sts:AssumeRole"])
    sync = RegistryClient(SourceConfig(name="prod", region=REGION, role_arn=role))
    push = RegistryClient(SourceConfig(name="prod", region=REGION, role_arn=role, source_identity="alice"))

    assert sync.describe_package(package_arn)["ModelPackageArn"] == package_arn  # the sync is unaffected
    with pytest.raises(RoleAssumptionError) as caught:
        push.describe_package(package_arn)
    assert caught.value.kind == "trust-policy" and "sts:SetSourceIdentity" in caught.value.fix
