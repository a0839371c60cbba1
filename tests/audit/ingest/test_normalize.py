"""The pure part: relevance, normalisation, link keys and lookups (no database, no AWS).

Actor naming: ``test_event_actors``; log files and S3 keys: ``test_trail_files``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from registry_app.audit.event_keys import (
    CARD,
    ENDPOINT,
    ENDPOINT_CONFIG,
    GROUP,
    MODEL,
    PACKAGE,
    RELEVANT_EVENTS,
    ROLE,
    UNLINKED,
    ci_get,
)
from registry_app.audit.event_links import package_ref
from registry_app.audit.events import NormalizedEvent, is_relevant, normalize, record_from_lookup_event
from tests.audit.ingest import records as r

NOW = dt.datetime(2025, 3, 14, 12, 0, tzinfo=dt.UTC)
PKG = r.arn_package("credit-risk", 7)


def norm(record: dict[str, Any]) -> NormalizedEvent:
    return normalize(record, fallback_time=NOW)


# (record, resource_type, resource_name, extra expectations on the link)
CASES: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    ("CreateModelPackage", r.create_package("credit-risk", 7), PACKAGE, PKG, {"group_name": "credit-risk"}),
    ("UpdateModelPackage", r.approve("credit-risk", 7), PACKAGE, PKG, {"group_name": "credit-risk"}),
    (
        "DeleteModelPackage (group/version)",
        r.record("DeleteModelPackage", {"modelPackageName": "credit-risk/7"}),
        PACKAGE,
        PKG,
        {"group_name": "credit-risk"},
    ),
    ("CreateModelPackageGroup", r.create_group("credit-risk"), GROUP, "credit-risk", {"group_name": "credit-risk"}),
    (
        "DeleteModelPackageGroup (ARN)",
        r.record("DeleteModelPackageGroup", {"modelPackageGroupName": r.arn_group("credit-risk")}),
        GROUP,
        "credit-risk",
        {},
    ),
    (
        "PutModelPackageGroupPolicy",
        r.record(
            "PutModelPackageGroupPolicy",
            {"modelPackageGroupName": "credit-risk", "resourcePolicy": '{"Version": "2012-10-17"}'},
            {"modelPackageGroupArn": r.arn_group("credit-risk")},
        ),
        GROUP,
        "credit-risk",
        {},
    ),
    (
        "DeleteModelPackageGroupPolicy",
        r.record("DeleteModelPackageGroupPolicy", {"modelPackageGroupName": "credit-risk"}),
        GROUP,
        "credit-risk",
        {},
    ),
    (
        "CreateModelCard",
        r.record(
            "CreateModelCard",
            {
                "modelCardName": "credit-risk-v7",
                "content": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "modelCardStatus": "Draft",
            },
            {"modelCardArn": f"arn:aws:sagemaker:{r.REGION}:{r.ACCOUNT}:model-card/credit-risk-v7"},
        ),
        CARD,
        "credit-risk-v7",
        {"card_name": "credit-risk-v7"},
    ),
    (
        "UpdateModelCard",
        r.record("UpdateModelCard", {"modelCardName": "credit-risk-v7", "modelCardStatus": "Approved"}),
        CARD,
        "credit-risk-v7",
        {},
    ),
    (
        "DeleteModelCard",
        r.record("DeleteModelCard", {"modelCardName": "credit-risk-v7"}),
        CARD,
        "credit-risk-v7",
        {},
    ),
    ("CreateModel", r.create_model("credit-risk-v7", PKG), MODEL, "credit-risk-v7", {"group_name": "credit-risk"}),
    ("DeleteModel", r.record("DeleteModel", {"modelName": "credit-risk-v7"}), MODEL, "credit-risk-v7", {}),
    (
        "CreateEndpointConfig",
        r.create_config("cfg-7", [("AllTraffic", "credit-risk-v7", 1.0)]),
        ENDPOINT_CONFIG,
        "cfg-7",
        {"config_name": "cfg-7"},
    ),
    (
        "DeleteEndpointConfig",
        r.record("DeleteEndpointConfig", {"endpointConfigName": "cfg-7"}),
        ENDPOINT_CONFIG,
        "cfg-7",
        {},
    ),
    (
        "CreateEndpoint",
        r.endpoint_call("CreateEndpoint", "Credit-Prod", "cfg-7"),
        ENDPOINT,
        "Credit-Prod",
        {"endpoint_name": "Credit-Prod", "config_name": "cfg-7"},
    ),
    (
        "UpdateEndpoint",
        r.endpoint_call("UpdateEndpoint", "credit-prod", "cfg-8"),
        ENDPOINT,
        "credit-prod",
        {"endpoint_name": "credit-prod"},
    ),
    (
        "DeleteEndpoint",
        r.endpoint_call("DeleteEndpoint", "credit-prod"),
        ENDPOINT,
        "credit-prod",
        {"endpoint_name": "credit-prod"},
    ),
    (
        "UpdateEndpointWeightsAndCapacities",
        r.update_weights("credit-prod", {"Champion": 0.5}),
        ENDPOINT,
        "credit-prod",
        {"endpoint_name": "credit-prod"},
    ),
    (
        "AssumeRole",
        r.record(
            "AssumeRole",
            {
                "roleArn": f"arn:aws:iam::{r.ACCOUNT}:role/ModelApprover",
                "roleSessionName": "mlead",
                "sourceIdentity": "mlead",
            },
            {"assumedRoleUser": {"arn": f"arn:aws:sts::{r.ACCOUNT}:assumed-role/ModelApprover/mlead"}},
            identity=r.iam_user("mlead"),
            source="sts.amazonaws.com",
        ),
        ROLE,
        f"arn:aws:iam::{r.ACCOUNT}:role/ModelApprover",
        {},
    ),
]


@pytest.mark.parametrize(("label", "rec", "kind", "name", "extra"), CASES, ids=[c[0] for c in CASES])
def test_each_relevant_event_is_kept_and_linked(
    label: str, rec: dict[str, Any], kind: str, name: str, extra: dict[str, Any]
) -> None:
    assert is_relevant(rec), label
    event = norm(rec)
    assert event.event_name == rec["eventName"]
    assert event.link.resource_type == kind
    assert event.link.resource_name == name
    for key, value in extra.items():
        assert getattr(event.link, key) == value
    assert event.event_id == rec["eventID"]
    assert event.event_time == dt.datetime(2025, 3, 14, 9, 26, 52, tzinfo=dt.UTC)
    assert event.account_id == r.ACCOUNT and event.aws_region == r.REGION
    assert event.read_only is False and event.error_code == ""


def test_every_listed_name_is_covered() -> None:
    assert {c[1]["eventName"] for c in CASES} == RELEVANT_EVENTS


def test_documented_verbatim_records() -> None:
    """The two §2.3 samples (eventVersion 1.05, IAM user ``intern``) as the guide prints them."""
    endpoint = {
        "eventVersion": "1.05",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIXDAYQEXAMPLEUMLYNGL",
            "arn": "arn:aws:iam::123456789012:user/intern",
            "accountId": "123456789012",
            "accessKeyId": "ASXIAGXEXAMPLEQULKNXV",
            "userName": "intern",
        },
        "eventTime": "2018-01-02T13:39:06Z",
        "eventSource": "sagemaker.amazonaws.com",
        "eventName": "CreateEndpoint",
        "awsRegion": "us-west-2",
        "sourceIPAddress": "127.0.0.1",
        "userAgent": "USER_AGENT",
        "requestParameters": {"endpointName": "ExampleEndpoint", "endpointConfigName": "ExampleEndpointConfig"},
        "responseElements": {"endpointArn": "arn:aws:sagemaker:us-west-2:123456789012:endpoint/exampleendpoint"},
        "requestID": "6b1b42b9-EXAMPLE",
        "eventID": "a6f85b21-EXAMPLE",
        "eventType": "AwsApiCall",
        "recipientAccountId": "444455556666",
    }
    event = norm(endpoint)
    assert event.link.endpoint_name == "ExampleEndpoint"  # the request's spelling, not the ARN's
    assert event.link.config_name == "ExampleEndpointConfig"
    assert event.actor.name == "intern" and event.actor.candidates == ("intern",)
    assert event.read_only is None  # 1.05 records have no readOnly
    assert event.account_id == "444455556666"

    model = {
        **endpoint,
        "eventName": "CreateModel",
        "requestParameters": {
            "modelName": "ExampleModel",
            "primaryContainer": {"image": "174872318107.dkr.ecr.us-west-2.amazonaws.com/kmeans:latest"},
            "executionRoleArn": "arn:aws:iam::123456789012:role/EXAMPLEARN",
        },
        "responseElements": {
            "modelArn": "arn:aws:sagemaker:us-west-2:123456789012:model/barkinghappy2018-01-02t15-23-32-275z-ivrdog"
        },
        "eventID": "0f2b3e81-EXAMPLE",
    }
    event = norm(model)
    assert (event.link.resource_type, event.link.resource_name) == (MODEL, "ExampleModel")
    assert event.link.package.name == ""  # not deployed from the registry


# ---------------------------------------------------------------------------------------------- casing and odd records


def test_pascal_case_keys_and_odd_event_name_casing() -> None:
    rec = r.record("updatemodelpackage", {"ModelPackageArn": PKG, "ModelApprovalStatus": "Approved"})
    assert is_relevant(rec)
    event = norm(rec)
    assert event.event_name == "UpdateModelPackage"
    assert (event.link.resource_type, event.link.resource_name) == (PACKAGE, PKG)
    shouting = r.record("CreateModel", {"MODELNAME": "m1", "PrimaryContainer": {"ModelPackageName": "credit-risk/7"}})
    link = norm(shouting).link
    assert link.model_name == "m1" and link.package.arn == PKG and link.package.version == 7


def test_arn_in_a_name_parameter_and_card_arn() -> None:
    event = norm(
        r.record("UpdateModelCard", {"modelCardName": f"arn:aws:sagemaker:{r.REGION}:{r.ACCOUNT}:model-card/c1"})
    )
    assert event.link.card_name == "c1"
    event = norm(r.record("DeleteModelPackage", {"modelPackageName": PKG}))
    assert event.link.package.group == "credit-risk" and event.link.package.version == 7


def test_failed_create_package_concerns_its_group() -> None:
    rec = r.record("CreateModelPackage", {"modelPackageGroupName": "credit-risk"}, error_code="ValidationException")
    event = norm(rec)
    assert event.error_code == "ValidationException"
    assert (event.link.resource_type, event.link.resource_name) == (GROUP, "credit-risk")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda rec: rec.pop("eventID"),
        lambda rec: rec.pop("eventTime"),
        lambda rec: rec.update(eventTime="yesterday"),
        lambda rec: rec.update(requestParameters=None, responseElements=None),
        lambda rec: rec.update(requestParameters=["not", "a", "dict"]),
        lambda rec: rec.update(requestParameters={"modelPackageArn": {"nested": True}}),
        lambda rec: rec.pop("userIdentity"),
        lambda rec: rec.update(userIdentity="odd"),
        lambda rec: rec.update(readOnly="false"),
        lambda rec: rec.pop("awsRegion"),
    ],
)
def test_missing_and_malformed_fields_never_crash(mutate: Any) -> None:
    rec = r.approve("credit-risk", 7)
    mutate(rec)
    event = norm(rec)
    assert event.event_id
    assert event.event_time.tzinfo is not None
    assert event.event_name == "UpdateModelPackage"


def test_missing_event_id_gets_a_stable_synthetic_id() -> None:
    rec = r.approve("credit-risk", 7)
    del rec["eventID"]
    first, second = norm(rec).event_id, norm(json.loads(json.dumps(rec))).event_id
    assert first == second and first.startswith("synthetic-") and len(first) <= 128


def test_missing_event_time_uses_the_fallback() -> None:
    rec = r.approve("credit-risk", 7)
    del rec["eventTime"]
    assert norm(rec).event_time == NOW


def test_unknown_names_are_kept_unlinked_and_reads_dropped() -> None:
    unknown = r.record("CreateModelCardExportJob", {"modelCardName": "c1", "outputConfig": {"s3OutputPath": "s3://x"}})
    assert is_relevant(unknown)
    event = norm(unknown)
    assert event.link.resource_type == UNLINKED and event.event_name == "CreateModelCardExportJob"
    assert not is_relevant(r.describe())
    assert not is_relevant(r.record("CreateTrainingJob", {"trainingJobName": "t"}))
    assert not is_relevant(r.record("ListModelPackages", {}, read_only=True))


def test_same_names_from_other_services_are_not_sagemaker() -> None:
    assert not is_relevant(r.record("DeleteEndpoint", {"endpointArn": "arn:aws:sns:..."}, source="sns.amazonaws.com"))
    assert not is_relevant(r.record("CreateModel", {"restApiId": "x"}, source="apigateway.amazonaws.com"))
    no_source = r.approve("credit-risk", 7)
    del no_source["eventSource"]
    assert is_relevant(no_source)


def test_assume_role_kept_for_people_and_source_identity_only() -> None:
    role = f"arn:aws:iam::{r.ACCOUNT}:role/X"
    by_service = r.record(
        "AssumeRole", {"roleArn": role}, identity=r.aws_service("lambda.amazonaws.com"), source="sts.amazonaws.com"
    )
    assert not is_relevant(by_service)
    with_identity = r.record(
        "AssumeRole",
        {"roleArn": role, "sourceIdentity": "alice"},
        identity=r.aws_service("sagemaker.amazonaws.com"),
        source="sts.amazonaws.com",
    )
    assert is_relevant(with_identity)
    by_person = r.record(
        "AssumeRole",
        {"roleArn": role, "roleSessionName": "bob"},
        identity=r.sso_user("bob"),
        source="sts.amazonaws.com",
    )
    assert is_relevant(by_person)
    assert not is_relevant(r.record("AssumeRole", {"roleArn": role}, source="iam.amazonaws.com"))


def test_non_dict_records_are_irrelevant() -> None:
    for value in (None, 1, "x", [], {"eventName": 5}):
        assert not is_relevant(value)


# ---------------------------------------------------------------------------------------------- package refs


@pytest.mark.parametrize(
    ("value", "arn", "group", "version"),
    [
        (PKG, PKG, "credit-risk", 7),
        ("credit-risk/7", PKG, "credit-risk", 7),
        (f"arn:aws:sagemaker:{r.REGION}:{r.ACCOUNT}:model-package/unversioned-pkg", "", "", None),
        ("plain-name", "", "", None),
        ("", "", "", None),
        ({"x": 1}, "", "", None),
    ],
)
def test_package_refs(value: Any, arn: str, group: str, version: int | None) -> None:
    ref = package_ref(value, region=r.REGION, account=r.ACCOUNT)
    assert (ref.group, ref.version) == (group, version)
    if arn:
        assert ref.arn == arn


def test_partitions() -> None:
    assert package_ref("g/1", region="cn-north-1", account="1" * 12).arn.startswith("arn:aws-cn:")
    assert package_ref("g/1", region="us-gov-west-1", account="1" * 12).arn.startswith("arn:aws-us-gov:")


# ---------------------------------------------------------------------------------------------- lookups


def test_record_from_lookup_event() -> None:
    rec = r.approve("credit-risk", 7)
    assert record_from_lookup_event(r.lookup_event(rec)) == rec
    broken = r.lookup_event(rec) | {"CloudTrailEvent": "{truncated"}
    fallback = record_from_lookup_event(broken)
    assert fallback["eventID"] == rec["eventID"] and fallback["eventName"] == "UpdateModelPackage"
    assert fallback["_unparsedCloudTrailEvent"] == "{truncated"
    assert is_relevant(fallback)
    assert norm(fallback).event_time == dt.datetime(2025, 3, 14, 9, 26, 52, tzinfo=dt.UTC)


def test_ci_get() -> None:
    data = {"modelName": "a", "EndpointName": "b", "WEIRDKey": "c", "none": None}
    assert ci_get(data, "modelName") == "a"
    assert ci_get(data, "endpointName") == "b"
    assert ci_get(data, "weirdKey") == "c"
    assert ci_get(data, "none") is None
    assert ci_get("not a dict", "x") is None
