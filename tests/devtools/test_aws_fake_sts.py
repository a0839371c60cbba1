"""The AWS-faithful fake: STS ``AssumeRole`` name rules and source identity (trust policy, chaining)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.devtools.helpers import REGION, Registry, make_role, session_client, trust_policy

WITH_SOURCE_IDENTITY = trust_policy("sts:AssumeRole", "sts:SetSourceIdentity")
WITHOUT_SOURCE_IDENTITY = trust_policy("sts:AssumeRole")
DENY_SET_SOURCE_IDENTITY = json.dumps(
    {"Statement": [{"Effect": "Allow", "Action": "*"}, {"Effect": "Deny", "Action": "sts:SetSourceIdentity"}]}
)


def _sts(**kwargs: Any) -> Any:
    return boto3.client("sts", region_name=REGION, **kwargs)


def _refused(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as exc:
        call(**params)
    response: dict[str, Any] = exc.value.response
    return response


# --------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["zoë", "first last", "a/b", "名前", "x" * 65, "x"])
def test_role_session_name_must_be_2_to_64_ascii_word_characters(fake: Registry, name: str) -> None:
    role = make_role("Reader", WITHOUT_SOURCE_IDENTITY)
    unchecked = _sts(config=Config(parameter_validation=False))  # botocore checks only the minimum
    response = _refused(unchecked.assume_role, RoleArn=role, RoleSessionName=name)
    assert response["Error"]["Code"] == "ValidationError"
    assert f"Value '{name}' at 'roleSessionName' failed to satisfy constraint" in response["Error"]["Message"]


def test_allowed_session_names(fake: Registry) -> None:
    role = make_role("Reader", WITHOUT_SOURCE_IDENTITY)
    for name in ("ab", "alice@example.com", "svc_sync-1+a=b,c.d", "x" * 64):
        arn = _sts().assume_role(RoleArn=role, RoleSessionName=name)["AssumedRoleUser"]["Arn"]
        assert arn.endswith(f"/Reader/{name}")


def test_plain_moto_accepts_non_ascii_session_names(plain: Registry) -> None:
    role = make_role("Reader", WITHOUT_SOURCE_IDENTITY)
    assert _sts().assume_role(RoleArn=role, RoleSessionName="zoë")["AssumedRoleUser"]["Arn"].endswith("/zoë")


@pytest.mark.parametrize("identity", ["zoë", "first last", "aws:alice", "x" * 65])
def test_source_identity_follows_the_same_rules_and_reserves_aws_prefix(fake: Registry, identity: str) -> None:
    role = make_role("Writer", WITH_SOURCE_IDENTITY)
    unchecked = _sts(config=Config(parameter_validation=False))
    response = _refused(unchecked.assume_role, RoleArn=role, RoleSessionName="push", SourceIdentity=identity)
    assert response["Error"]["Code"] == "ValidationError"


# --------------------------------------------------------------------------------------------- trust policy


def test_source_identity_needs_set_source_identity_in_the_trust_policy(fake: Registry) -> None:
    role = make_role("Writer", WITHOUT_SOURCE_IDENTITY)
    response = _refused(_sts().assume_role, RoleArn=role, RoleSessionName="alice", SourceIdentity="alice")
    caller = _sts().get_caller_identity()["Arn"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert response["Error"] == {
        "Type": "Sender",
        "Code": "AccessDenied",
        "Message": f"User: {caller} is not authorized to perform: sts:SetSourceIdentity on resource: {role}",
    }
    assert _sts().assume_role(RoleArn=role, RoleSessionName="alice")["AssumedRoleUser"]  # without it: fine


def test_plain_moto_lets_any_role_set_a_source_identity(plain: Registry) -> None:
    role = make_role("Writer", "{}")
    answer = _sts().assume_role(RoleArn=role, RoleSessionName="alice", SourceIdentity="alice")
    assert "SourceIdentity" not in answer  # accepted, and not even returned


def test_source_identity_is_returned_and_recorded_on_what_the_session_changes(fake: Registry) -> None:
    role = make_role("Writer", WITH_SOURCE_IDENTITY)
    arn = fake.package()
    answer = _sts().assume_role(RoleArn=role, RoleSessionName="alice", SourceIdentity="alice")
    assert answer["SourceIdentity"] == "alice"
    as_alice = Registry(**_credentials(answer))
    as_alice.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    identity = fake.describe(arn)["LastModifiedBy"]["IamIdentity"]
    assert identity["Arn"] == answer["AssumedRoleUser"]["Arn"]
    assert identity["PrincipalId"] == answer["AssumedRoleUser"]["AssumedRoleId"]
    assert identity["SourceIdentity"] == "alice"


def test_a_role_missing_from_iam_cannot_grant_set_source_identity(fake: Registry) -> None:
    response = _refused(
        _sts().assume_role,
        RoleArn="arn:aws:iam::123456789012:role/NotThere",
        RoleSessionName="alice",
        SourceIdentity="alice",
    )
    assert response["Error"]["Code"] == "AccessDenied"


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        (trust_policy("sts:*"), True),
        (trust_policy("sts:Set*"), True),
        (
            trust_policy(
                "sts:AssumeRole", "sts:SetSourceIdentity", condition={"StringLike": {"sts:SourceIdentity": "a*"}}
            ),
            True,
        ),
        (
            trust_policy(
                "sts:AssumeRole", "sts:SetSourceIdentity", condition={"StringEquals": {"sts:SourceIdentity": "bob"}}
            ),
            False,
        ),
        (
            DENY_SET_SOURCE_IDENTITY,
            False,
        ),
    ],
)
def test_trust_policy_actions_wildcards_conditions_and_deny(fake: Registry, policy: str, allowed: bool) -> None:
    role = make_role("Writer", policy)
    params = {"RoleArn": role, "RoleSessionName": "alice", "SourceIdentity": "alice"}
    if allowed:
        assert _sts().assume_role(**params)["SourceIdentity"] == "alice"
    else:
        assert _refused(_sts().assume_role, **params)["Error"]["Code"] == "AccessDenied"


# --------------------------------------------------------------------------------------------- role chaining


def _credentials(answer: dict[str, Any]) -> dict[str, str]:
    creds = answer["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def test_a_chained_session_keeps_the_source_identity_and_cannot_change_it(fake: Registry) -> None:
    first = make_role("Hub", WITH_SOURCE_IDENTITY)
    second = make_role("Spoke", WITH_SOURCE_IDENTITY)
    answer = _sts().assume_role(RoleArn=first, RoleSessionName="alice", SourceIdentity="alice")
    hub = session_client(answer["Credentials"], "sts")
    refused = _refused(hub.assume_role, RoleArn=second, RoleSessionName="bob", SourceIdentity="bob")
    assert refused["Error"]["Code"] == "AccessDenied"
    assert refused["Error"]["Message"].startswith(f"User: {answer['AssumedRoleUser']['Arn']} is not authorized")
    chained = hub.assume_role(RoleArn=second, RoleSessionName="hop")
    assert chained["SourceIdentity"] == "alice"  # inherited without asking
    assert hub.assume_role(RoleArn=second, RoleSessionName="hop2", SourceIdentity="alice")["SourceIdentity"] == "alice"
