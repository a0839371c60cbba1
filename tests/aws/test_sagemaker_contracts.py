"""Contract tests of the SageMaker calls: requests checked against the service model, responses
shaped like the API reference (paging, lowercased group names in package ARNs, the exact
not-found answer of each Describe)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from registry_app.aws.errors import AccessDeniedError, NotFoundError, ValidationError
from registry_app.aws.sagemaker import RegistryClient
from tests.aws.contracts import ACCOUNT, SHARED_ACCOUNT, Stubs, arn, contract

T0 = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
SM = "sagemaker"


def group_summary(name: str, account: str = ACCOUNT) -> dict:
    return {
        "ModelPackageGroupName": name,
        "ModelPackageGroupArn": arn("model-package-group", name.lower(), account),
        "CreationTime": T0,
        "ModelPackageGroupStatus": "Completed",
    }


def package_record(group: str, version: int, status: str = "PendingManualApproval") -> dict:
    # SageMaker lowercases the group name inside the package ARN; the record keeps its case.
    return {
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": arn("model-package", f"{group.lower()}/{version}"),
        "CreationTime": T0,
        "LastModifiedTime": T0 + dt.timedelta(minutes=version),
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": {"GitCommitSha": "0123abc"},
    }


@contract(SM, "ListModelPackageGroups")
def test_groups_are_listed_page_by_page_own_and_shared(client: RegistryClient, stubs: Stubs) -> None:
    stubs.ok(
        SM,
        "ListModelPackageGroups",
        {"ModelPackageGroupSummaryList": [group_summary("Credit-Risk")], "NextToken": "p2"},
        {"MaxResults": 100},
    )
    stubs.ok(
        SM,
        "ListModelPackageGroups",
        {"ModelPackageGroupSummaryList": [group_summary("fraud")]},
        {"MaxResults": 100, "NextToken": "p2"},
    )
    shared = {"MaxResults": 100, "CrossAccountFilterOption": "CrossAccount"}
    stubs.ok(
        SM, "ListModelPackageGroups", {"ModelPackageGroupSummaryList": [group_summary("churn", SHARED_ACCOUNT)]}, shared
    )

    own = [g["ModelPackageGroupName"] for page in client.iter_group_pages() for g in page]
    other = [g["ModelPackageGroupArn"] for page in client.iter_group_pages(cross_account=True) for g in page]

    assert own == ["Credit-Risk", "fraud"]
    assert other == [arn("model-package-group", "churn", SHARED_ACCOUNT)]
    assert client.stats.as_dict() == {"ListModelPackageGroups": 3}


@contract(SM, "DescribeModelPackageGroup", "ListTags")
def test_a_group_is_described_and_its_tags_read_over_pages(client: RegistryClient, stubs: Stubs) -> None:
    group_arn = arn("model-package-group", "credit-risk")
    described = {**group_summary("Credit-Risk"), "ModelPackageGroupDescription": "PD model", "CreatedBy": {}}
    stubs.ok(SM, "DescribeModelPackageGroup", described, {"ModelPackageGroupName": "Credit-Risk"})
    stubs.ok(
        SM,
        "ListTags",
        {"Tags": [{"Key": "team", "Value": "risk"}], "NextToken": "t2"},
        {"ResourceArn": group_arn, "MaxResults": 100},
    )
    stubs.ok(
        SM,
        "ListTags",
        {"Tags": [{"Key": "tier", "Value": "1"}]},
        {"ResourceArn": group_arn, "MaxResults": 100, "NextToken": "t2"},
    )

    record = client.describe_group("Credit-Risk")

    assert record["ModelPackageGroupArn"] == group_arn and record["CreationTime"] == "2025-03-01T09:30:00+00:00"
    assert client.list_tags(group_arn) == {"team": "risk", "tier": "1"}


@contract(SM, "ListTags")
def test_list_tags_denied_on_a_ram_shared_group_is_access_denied(client: RegistryClient, stubs: Stubs) -> None:
    """A RAM share rarely grants sagemaker:ListTags: the adapter must say AccessDenied (so the mirror
    can keep the group without tags, as a warning), never not-found or a generic failure."""
    shared_arn = arn("model-package-group", "churn", SHARED_ACCOUNT)
    message = (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/GovernanceReader/governance-dashboard is not authorized to "
        f"perform: sagemaker:ListTags on resource: {shared_arn} because no resource-based policy allows the "
        "sagemaker:ListTags action"
    )
    stubs.error(
        SM, "ListTags", "AccessDeniedException", message, expected={"ResourceArn": shared_arn, "MaxResults": 100}
    )

    with pytest.raises(AccessDeniedError) as caught:
        client.list_tags(shared_arn)

    assert caught.value.operation == "ListTags" and not caught.value.retryable


@contract(SM, "DescribeModelPackageGroup")
def test_a_missing_group_is_not_found(client: RegistryClient, stubs: Stubs) -> None:
    stubs.error(
        SM,
        "DescribeModelPackageGroup",
        "ValidationException",
        "ModelPackageGroup gone does not exist.",
        expected={"ModelPackageGroupName": "gone"},
    )

    with pytest.raises(NotFoundError):
        client.describe_group("gone")


@contract(SM, "ListModelPackages")
def test_packages_of_a_shared_group_are_listed_by_arn(client: RegistryClient, stubs: Stubs) -> None:
    group_arn = arn("model-package-group", "churn", SHARED_ACCOUNT)
    summary = {
        k: v
        for k, v in package_record("churn", 1).items()
        if k != "CustomerMetadataProperties" and k != "LastModifiedTime"
    }
    expected = {"MaxResults": 100, "ModelPackageType": "Versioned", "ModelPackageGroupName": group_arn}
    stubs.ok(SM, "ListModelPackages", {"ModelPackageSummaryList": [summary], "NextToken": "n2"}, expected)
    stubs.ok(SM, "ListModelPackages", {"ModelPackageSummaryList": []}, {**expected, "NextToken": "n2"})

    pages = list(client.iter_package_summary_pages(group=group_arn))

    assert [len(p) for p in pages] == [1, 0] and pages[0][0]["ModelPackageArn"].endswith("/churn/1")


@contract(SM, "Search")
def test_search_follows_next_token_and_keeps_the_group_name_case(client: RegistryClient, stubs: Stubs) -> None:
    """AWS pages Search 100 at a time (moto ignores MaxResults and NextToken); the package ARN
    carries the group name in lower case, the record's ModelPackageGroupName keeps its case."""
    since = dt.datetime(2025, 3, 1, 9, 0, 12, 345678, tzinfo=dt.UTC)
    expected = {
        "Resource": "ModelPackage",
        "MaxResults": 100,
        "SortBy": "LastModifiedTime",
        "SortOrder": "Ascending",
        "SearchExpression": {
            "Filters": [
                {"Name": "LastModifiedTime", "Operator": "GreaterThanOrEqualTo", "Value": "2025-03-01T09:00:12"},
                {"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": "Credit-Risk"},
            ]
        },
    }
    page1 = {"Results": [{"ModelPackage": package_record("Credit-Risk", v)} for v in (1, 2)], "NextToken": "s2"}
    page2 = {"Results": [{"ModelPackage": package_record("Credit-Risk", 3)}, {}]}  # a record of another kind
    stubs.ok(SM, "Search", page1, expected)
    stubs.ok(SM, "Search", page2, {**expected, "NextToken": "s2"})

    pages = list(client.iter_search_package_pages(modified_since=since, group="Credit-Risk"))

    records = [r for page in pages for r in page]
    assert [r["ModelPackageVersion"] for r in records] == [1, 2, 3]
    assert {r["ModelPackageGroupName"] for r in records} == {"Credit-Risk"}
    assert records[2]["ModelPackageArn"] == arn("model-package", "credit-risk/3")
    assert client.stats.as_dict() == {"Search": 2}


@contract(SM, "DescribeModelPackage")
def test_a_package_is_described_and_a_missing_one_is_not_found(client: RegistryClient, stubs: Stubs) -> None:
    package_arn = arn("model-package", "credit-risk/3")
    described = {
        **package_record("Credit-Risk", 3),
        "ModelPackageName": "credit-risk",
        "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
    }
    stubs.ok(
        SM,
        "DescribeModelPackage",
        described,
        {"ModelPackageName": package_arn},
    )
    stubs.error(
        SM,
        "DescribeModelPackage",
        "ValidationException",
        f"ModelPackage {package_arn} does not exist.",
        expected={"ModelPackageName": package_arn},
    )

    assert client.describe_package(package_arn)["ModelApprovalStatus"] == "PendingManualApproval"
    with pytest.raises(NotFoundError):
        client.describe_package(package_arn)


@contract(SM, "UpdateModelPackage")
def test_a_push_sends_the_complete_state_with_a_client_token(client: RegistryClient, stubs: Stubs) -> None:
    package_arn = arn("model-package", "credit-risk/3")
    token = str(uuid.UUID("0b8e1c1e-8d4c-4a55-9d55-2f7d4c3b2a10"))
    params = {
        "ModelPackageArn": package_arn,
        "ModelApprovalStatus": "Approved",
        "ApprovalDescription": "Approved in the governance dashboard by josé.müller",
        "CustomerMetadataProperties": {"GitCommitSha": "0123abc", "governance.review": "approved"},
        "ClientToken": token,
    }
    stubs.ok(SM, "UpdateModelPackage", {"ModelPackageArn": package_arn}, params)

    assert client.update_package(**params) == {"ModelPackageArn": package_arn}


@contract(SM, "ListModelCards", "DescribeModelCard")
def test_model_cards_are_listed_described_and_a_missing_one_is_not_found(client: RegistryClient, stubs: Stubs) -> None:
    card = {
        "ModelCardName": "credit-risk-card",
        "ModelCardArn": arn("model-card", "credit-risk-card"),
        "ModelCardStatus": "Approved",
        "CreationTime": T0,
    }
    stubs.ok(SM, "ListModelCards", {"ModelCardSummaries": [card]}, {"MaxResults": 100})
    described = {**card, "ModelCardVersion": 2, "Content": "{}", "CreatedBy": {}}
    stubs.ok(SM, "DescribeModelCard", described, {"ModelCardName": "credit-risk-card"})
    stubs.error(
        SM,
        "DescribeModelCard",
        "ResourceNotFound",
        "Modelcard gone does not exist.",
        expected={"ModelCardName": "gone"},
    )

    assert [c["ModelCardName"] for page in client.iter_model_card_pages() for c in page] == ["credit-risk-card"]
    assert client.describe_model_card("credit-risk-card")["ModelCardVersion"] == 2
    with pytest.raises(NotFoundError):
        client.describe_model_card("gone")


def endpoint(name: str) -> dict:
    return {
        "EndpointName": name,
        "EndpointArn": arn("endpoint", name),
        "CreationTime": T0,
        "LastModifiedTime": T0,
        "EndpointStatus": "InService",
    }


@contract(SM, "ListEndpoints", "DescribeEndpoint", "DescribeEndpointConfig", "DescribeModel")
def test_an_endpoint_is_followed_to_its_config_and_model(client: RegistryClient, stubs: Stubs) -> None:
    stubs.ok(SM, "ListEndpoints", {"Endpoints": [endpoint("risk-prod")]}, {"MaxResults": 100})
    stubs.ok(
        SM,
        "DescribeEndpoint",
        {**endpoint("risk-prod"), "EndpointConfigName": "risk-prod-v3"},
        {"EndpointName": "risk-prod"},
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "risk-v3",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    config = {
        "EndpointConfigName": "risk-prod-v3",
        "EndpointConfigArn": arn("endpoint-config", "risk-prod-v3"),
        "ProductionVariants": [variant],
        "CreationTime": T0,
    }
    stubs.ok(SM, "DescribeEndpointConfig", config, {"EndpointConfigName": "risk-prod-v3"})
    model = {
        "ModelName": "risk-v3",
        "ModelArn": arn("model", "risk-v3"),
        "CreationTime": T0,
        "Containers": [{"ModelPackageName": arn("model-package", "credit-risk/3")}],
    }
    stubs.ok(SM, "DescribeModel", model, {"ModelName": "risk-v3"})

    names = [e["EndpointName"] for page in client.iter_endpoint_pages() for e in page]
    described = client.describe_endpoint("risk-prod")
    variants = client.describe_endpoint_config(described["EndpointConfigName"])["ProductionVariants"]

    assert names == ["risk-prod"]
    assert client.describe_model(variants[0]["ModelName"])["Containers"][0]["ModelPackageName"].endswith(
        "credit-risk/3"
    )


@contract(SM, "DescribeModel", "DescribeEndpoint", "DescribeEndpointConfig")
@pytest.mark.parametrize(
    ("operation", "param", "message"),
    [
        ("DescribeModel", "ModelName", f'Could not find model "{arn("model", "risk-v2")}".'),
        ("DescribeEndpoint", "EndpointName", f'Could not find endpoint "{arn("endpoint", "risk-old")}".'),
        (
            "DescribeEndpointConfig",
            "EndpointConfigName",
            f'Could not find endpoint configuration "{arn("endpoint-config", "risk-v2")}".',
        ),
    ],
)
def test_could_not_find_is_not_found(
    client: RegistryClient, stubs: Stubs, operation: str, param: str, message: str
) -> None:
    """Fails on the old code: SageMaker answers a deleted model, endpoint or endpoint config with
    ``ValidationException: Could not find ...``, which was a ValidationError, so an endpoint whose
    model was deleted failed the endpoint sync instead of showing "model deleted"."""
    value = message.split('"')[1].rsplit("/", 1)[1]
    stubs.error(SM, operation, "ValidationException", message, expected={param: value})
    for other in {"DescribeModel", "DescribeEndpoint", "DescribeEndpointConfig"} - {operation}:
        stubs.operations.add((SM, other))  # the other parameter sets cover those

    method = {
        "DescribeModel": client.describe_model,
        "DescribeEndpoint": client.describe_endpoint,
        "DescribeEndpointConfig": client.describe_endpoint_config,
    }[operation]
    with pytest.raises(NotFoundError) as caught:
        method(value)
    assert caught.value.operation == operation and caught.value.code == "ValidationException"


@contract(SM, "DescribeModel", "ListModelPackages", "DescribeEndpoint")
def test_other_validation_exceptions_stay_validation_errors(client: RegistryClient, stubs: Stubs) -> None:
    """Fails on the old code, which turned any ValidationException mentioning "not found" into
    not-found: only each operation's own not-found answer is one."""
    malformed = (
        "1 validation error detected: Value 'risk_v3' at 'modelName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"
    )
    stubs.error(SM, "DescribeModel", "ValidationException", malformed, expected={"ModelName": "risk-v3"})
    listing = {"MaxResults": 100, "ModelPackageType": "Versioned", "ModelPackageGroupName": "g"}
    stubs.error(
        SM, "ListModelPackages", "ValidationException", "Parameter not found in the request context", expected=listing
    )
    stubs.error(
        SM,
        "DescribeEndpoint",
        "ValidationException",
        'Could not find endpoint configuration "x".',
        expected={"EndpointName": "e"},
    )

    with pytest.raises(ValidationError):
        client.describe_model("risk-v3")
    with pytest.raises(ValidationError):
        list(client.iter_package_summary_pages(group="g"))
    with pytest.raises(ValidationError):
        client.describe_endpoint("e")
