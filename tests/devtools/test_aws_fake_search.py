"""The AWS-faithful fake: SageMaker ``Search`` over model packages and groups (paging, order, filters)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from registry_app.devtools import aws_fake
from tests.devtools.helpers import Registry

JAN = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _months(registry: Registry, count: int, group: str = "credit-risk") -> list[str]:
    """``count`` packages created a month apart from January 2025 (oldest first)."""
    arns = []
    for index in range(count):
        arn = registry.package(group)
        aws_fake.backdate_package(arn, JAN + dt.timedelta(days=30 * index))
        arns.append(arn)
    return arns


def _all_pages(registry: Registry, **params: Any) -> tuple[list[str], int]:
    arns: list[str] = []
    calls = 0
    token = None
    while True:
        answer = registry.search(**params, **({"NextToken": token} if token else {}))
        calls += 1
        arns += registry.arns(answer, params.get("Resource", "ModelPackage"))
        token = answer.get("NextToken")
        if not token:
            return arns, calls


def _when(stamp: dt.datetime) -> str:
    return stamp.strftime("%Y-%m-%dT%H:%M:%S")


# --------------------------------------------------------------------------------------------- paging


def test_max_results_and_next_token_page_through_every_match(fake: Registry) -> None:
    arns = _months(fake, 5)
    first = fake.search(MaxResults=2, SortBy="CreationTime", SortOrder="Ascending")
    assert fake.arns(first) == arns[:2] and first["NextToken"]
    assert first["TotalHits"] == {"Value": 5, "Relation": "EqualTo"}
    seen, calls = _all_pages(fake, MaxResults=2, SortBy="CreationTime", SortOrder="Ascending")
    assert (seen, calls) == (arns, 3)


def test_plain_moto_ignores_max_results_and_never_pages(plain: Registry) -> None:
    for _ in range(3):
        plain.package()
    answer = plain.search(MaxResults=2)
    assert len(answer["Results"]) == 3 and "NextToken" not in answer


def test_default_page_is_ten_records(fake: Registry) -> None:
    for _ in range(12):
        fake.package()
    answer = fake.search()
    assert len(answer["Results"]) == 10 and answer["NextToken"]


@pytest.mark.parametrize("max_results", [0, 101])
def test_max_results_outside_1_to_100_is_refused(fake: Registry, max_results: int) -> None:
    fake.package()
    unchecked = Registry(config=Config(parameter_validation=False))  # botocore checks only the minimum
    with pytest.raises(ClientError) as exc:
        unchecked.search(MaxResults=max_results)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "maxResults" in exc.value.response["Error"]["Message"]


def test_a_record_updated_between_pages_is_not_skipped(fake: Registry) -> None:
    """Ascending LastModifiedTime paging (the incremental sync's order): an update moves a record to
    the end, and the cursor still returns every record at least once."""
    arns = _months(fake, 4)
    params = {"MaxResults": 2, "SortBy": "LastModifiedTime", "SortOrder": "Ascending"}
    first = fake.search(**params)
    fake.sm.update_model_package(ModelPackageArn=arns[0], ModelApprovalStatus="Approved")
    rest = fake.search(**params, NextToken=first["NextToken"])
    rest_arns = fake.arns(rest)
    if rest.get("NextToken"):
        rest_arns += fake.arns(fake.search(**params, NextToken=rest["NextToken"]))
    assert set(fake.arns(first) + rest_arns) == set(arns)
    assert rest_arns[-1] == arns[0]  # the updated record comes again, last


def test_a_token_from_another_query_is_refused(fake: Registry) -> None:
    _months(fake, 3)
    token = fake.search(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as exc:
        fake.search(MaxResults=1, SortBy="CreationTime", NextToken=token)
    assert exc.value.response["Error"]["Code"] == "ValidationException"


# --------------------------------------------------------------------------------------------- order


def test_default_order_is_last_modified_time_descending(fake: Registry) -> None:
    arns = _months(fake, 3)
    fake.sm.update_model_package(ModelPackageArn=arns[1], ModelApprovalStatus="Approved")
    assert fake.arns(fake.search()) == [arns[1], arns[2], arns[0]]


@pytest.mark.parametrize(
    ("sort_by", "order", "expected"),
    [
        ("CreationTime", "Ascending", [0, 1, 2]),
        ("CreationTime", "Descending", [2, 1, 0]),
        ("ModelPackageVersion", "Descending", [2, 1, 0]),
        ("ModelPackageGroupName", "Ascending", [0, 1, 2]),  # ties broken by ARN
    ],
)
def test_sort_by_and_sort_order(fake: Registry, sort_by: str, order: str, expected: list[int]) -> None:
    arns = _months(fake, 3)
    assert fake.arns(fake.search(SortBy=sort_by, SortOrder=order)) == [arns[i] for i in expected]


def test_plain_moto_ignores_sort_order(plain: Registry) -> None:
    arns = [plain.package() for _ in range(3)]
    assert plain.arns(plain.search(SortBy="CreationTime", SortOrder="Descending")) == arns


def test_sort_by_an_unknown_property_is_refused(fake: Registry) -> None:
    fake.package()
    with pytest.raises(ClientError) as exc:
        fake.search(SortBy="Name")  # ListModelPackages sorts by "Name"; Search takes property names
    assert "Unknown property name" in exc.value.response["Error"]["Message"]


# --------------------------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("operator", "expected"),
    [("GreaterThan", [2, 3]), ("GreaterThanOrEqualTo", [1, 2, 3]), ("LessThan", [0]), ("LessThanOrEqualTo", [0, 1])],
)
@pytest.mark.parametrize("name", ["CreationTime", "LastModifiedTime"])
def test_range_filters_on_timestamps(fake: Registry, name: str, operator: str, expected: list[int]) -> None:
    arns = _months(fake, 4)
    value = _when(JAN + dt.timedelta(days=30))  # exactly the second package's time
    answer = fake.search(
        SearchExpression={"Filters": [{"Name": name, "Operator": operator, "Value": value}]},
        SortBy="CreationTime",
        SortOrder="Ascending",
    )
    assert fake.arns(answer) == [arns[i] for i in expected]


def test_plain_moto_range_filter_on_last_modified_time_matches_nothing(plain: Registry) -> None:
    arn = plain.package()
    plain.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    flt = {"Name": "LastModifiedTime", "Operator": "GreaterThan", "Value": "2000-01-01T00:00:00"}
    assert plain.search(SearchExpression={"Filters": [flt]})["Results"] == []


def test_equals_on_group_and_approval_status_combined_with_and(fake: Registry) -> None:
    risk = fake.package("credit-risk")
    fake.package("churn")
    fake.sm.update_model_package(ModelPackageArn=risk, ModelApprovalStatus="Approved")
    fake.package("credit-risk")
    filters = [
        {"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": "credit-risk"},
        {"Name": "ModelApprovalStatus", "Value": "Approved"},  # no Operator means Equals
    ]
    assert fake.arns(fake.search(SearchExpression={"Filters": filters})) == [risk]


def test_or_sub_expressions_exists_and_dotted_properties(fake: Registry) -> None:
    staged = fake.package(ModelLifeCycle={"Stage": "Production", "StageStatus": "Approved"})
    tagged = fake.package(Tags=[{"Key": "team", "Value": "risk"}])
    fake.package()
    expression = {
        "Operator": "Or",
        "SubExpressions": [
            {"Filters": [{"Name": "ModelLifeCycle.Stage", "Operator": "Equals", "Value": "Production"}]},
            {"Filters": [{"Name": "Tags.team", "Operator": "Equals", "Value": "risk"}]},
        ],
    }
    assert sorted(fake.arns(fake.search(SearchExpression=expression))) == sorted([staged, tagged])
    exists = {"Filters": [{"Name": "ModelLifeCycle", "Operator": "Exists"}]}
    assert fake.arns(fake.search(SearchExpression=exists)) == [staged]


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ({"Name": "ModelPackageGroupName", "Operator": "GreaterThan", "Value": "a"}, "not supported for text"),
        ({"Name": "LastModifiedTime", "Operator": "GreaterThan", "Value": "2025-01-01T00:00:00Z"}, "yyyy-MM-dd"),
        ({"Name": "LastModifiedTime", "Operator": "GreaterThan", "Value": "2025-01-01"}, "yyyy-MM-dd"),
        ({"Name": "NoSuchProperty", "Operator": "Equals", "Value": "x"}, "Unknown property name"),
    ],
)
def test_invalid_filters_are_refused(fake: Registry, flt: dict[str, str], message: str) -> None:
    fake.package()
    with pytest.raises(ClientError) as exc:
        fake.search(SearchExpression={"Filters": [flt]})
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert message in exc.value.response["Error"]["Message"]


def test_only_one_contains_per_expression(fake: Registry) -> None:
    fake.package()
    contains = {"Name": "ModelPackageGroupName", "Operator": "Contains", "Value": "risk"}
    assert len(fake.search(SearchExpression={"Filters": [contains]})["Results"]) == 1
    with pytest.raises(ClientError) as exc:
        fake.search(SearchExpression={"Filters": [contains, contains]})
    assert exc.value.response["Error"]["Message"] == "'CONTAINS' operator usage limit of 1 exceeded."


# --------------------------------------------------------------------------------------------- records


def test_search_records_carry_card_life_cycle_and_tags(fake: Registry) -> None:
    card = {"ModelCardContent": "{}", "ModelCardStatus": "Approved"}
    life_cycle = {"Stage": "QA", "StageStatus": "PendingApproval"}
    fake.package(ModelCard=card, ModelLifeCycle=life_cycle, Tags=[{"Key": "team", "Value": "risk"}])
    record = fake.search()["Results"][0]["ModelPackage"]
    assert (record["ModelCard"], record["ModelLifeCycle"]) == (card, life_cycle)
    assert record["Tags"] == [{"Key": "team", "Value": "risk"}]


def test_model_package_groups_page_sort_and_filter(fake: Registry) -> None:
    names = ["churn", "credit-risk", "fraud"]
    for index, name in enumerate(names):
        aws_fake.backdate_group(fake.group(name), JAN + dt.timedelta(days=index))
    seen, calls = _all_pages(fake, Resource="ModelPackageGroup", MaxResults=2)
    assert calls == 2 and len(seen) == 3
    newest_first = fake.search(Resource="ModelPackageGroup", SortBy="CreationTime")
    assert [r["ModelPackageGroup"]["ModelPackageGroupName"] for r in newest_first["Results"]] == names[::-1]
    after = {"Name": "CreationTime", "Operator": "GreaterThan", "Value": _when(JAN)}
    answer = fake.search(Resource="ModelPackageGroup", SearchExpression={"Filters": [after]})
    assert {r["ModelPackageGroup"]["ModelPackageGroupName"] for r in answer["Results"]} == {"credit-risk", "fraud"}
