"""The AWS-faithful fake: model packages (create, update, describe) behave as AWS documents.

Each ``test_*`` runs against the fake; where plain moto differs, a ``test_plain_moto_*`` next to it pins
moto 5.2.5's behaviour, so a moto upgrade that fixes it shows up here. Sources: docs/aws-fake.md.
"""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from registry_app.devtools import aws_fake
from tests.devtools.helpers import CONTAINER, INFERENCE, Registry

CARD = {"ModelCardContent": '{"intended_uses": {"risk_rating": "High"}}', "ModelCardStatus": "Draft"}
LIFE_CYCLE = {"Stage": "Development", "StageStatus": "InProgress", "StageDescription": "first cut"}
NEW_INFERENCE = {**INFERENCE, "Containers": [{**CONTAINER, "ModelDataUrl": "s3://ml/credit-risk/2/model.tar.gz"}]}
EXTRA_SPEC = {"Name": "neo-compiled", "Containers": [CONTAINER]}


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


# --------------------------------------------------------------------------------------------- partial updates


def test_update_keeps_the_members_a_call_leaves_out(fake: Registry) -> None:
    arn = fake.package(CustomerMetadataProperties={"owner": "team-risk"})
    fake.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="gate met")
    fake.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"ticket": "GOV-1"})
    record = fake.describe(arn)
    assert record["ModelApprovalStatus"] == "Approved"
    assert record["ApprovalDescription"] == "gate met"
    assert record["CustomerMetadataProperties"] == {"owner": "team-risk", "ticket": "GOV-1"}


def test_plain_moto_blanks_the_members_a_call_leaves_out(plain: Registry) -> None:
    arn = plain.package(CustomerMetadataProperties={"owner": "team-risk"})
    plain.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="gate met")
    plain.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"ticket": "GOV-1"})
    record = plain.describe(arn)
    assert "ModelApprovalStatus" not in record and "ApprovalDescription" not in record
    assert record["CustomerMetadataProperties"] == {"ticket": "GOV-1"}


def test_update_merges_metadata_and_honours_keys_to_remove(fake: Registry) -> None:
    arn = fake.package(CustomerMetadataProperties={"owner": "team-risk", "draft-note": "wip", "ticket": "GOV-1"})
    fake.sm.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"ticket": "GOV-2", "approved-by": "alice"},
        CustomerMetadataPropertiesToRemove=["draft-note", "never-there"],
    )
    expected = {"owner": "team-risk", "ticket": "GOV-2", "approved-by": "alice"}
    assert fake.describe(arn)["CustomerMetadataProperties"] == expected


def test_removing_keys_from_a_package_without_metadata_is_harmless(fake: Registry) -> None:
    arn = fake.package()
    fake.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["absent"])
    assert "CustomerMetadataProperties" not in fake.describe(arn)


def test_update_applies_inference_spec_card_source_uri_life_cycle_and_extra_specs(fake: Registry) -> None:
    arn = fake.package(ModelCard=CARD)
    fake.sm.update_model_package(
        ModelPackageArn=arn,
        InferenceSpecification=NEW_INFERENCE,
        ModelCard={"ModelCardStatus": "PendingReview"},
        SourceUri="arn:aws:sagemaker:eu-west-1:123456789012:model/credit-risk-2",
        ModelLifeCycle=LIFE_CYCLE,
        AdditionalInferenceSpecificationsToAdd=[EXTRA_SPEC],
    )
    record = fake.describe(arn)
    assert record["InferenceSpecification"] == NEW_INFERENCE
    assert record["ModelCard"] == {**CARD, "ModelCardStatus": "PendingReview"}  # content kept
    assert record["SourceUri"].endswith(":model/credit-risk-2")
    assert record["ModelLifeCycle"] == LIFE_CYCLE
    assert record["AdditionalInferenceSpecifications"] == [EXTRA_SPEC]
    fake.sm.update_model_package(ModelPackageArn=arn, AdditionalInferenceSpecificationsToAdd=[EXTRA_SPEC])
    assert len(fake.describe(arn)["AdditionalInferenceSpecifications"]) == 2  # appended, not replaced


def test_plain_moto_ignores_inference_spec_card_source_uri_and_life_cycle(plain: Registry) -> None:
    arn = plain.package()
    plain.sm.update_model_package(
        ModelPackageArn=arn, InferenceSpecification=NEW_INFERENCE, ModelCard=CARD, SourceUri="s3://x/y"
    )
    plain.sm.update_model_package(ModelPackageArn=arn, ModelLifeCycle=LIFE_CYCLE)
    record = plain.describe(arn)
    assert record["InferenceSpecification"] == INFERENCE
    assert not {"ModelCard", "SourceUri", "ModelLifeCycle"} & set(record)


# --------------------------------------------------------------------------------------------- times and callers


def test_last_modified_time_is_set_at_creation_and_advances_on_every_update(fake: Registry) -> None:
    arn = fake.package()
    created = fake.describe(arn)
    assert created["LastModifiedTime"] == created["CreationTime"]
    stamps = [created["LastModifiedTime"]]
    for status in ("Approved", "Approved", "Rejected"):  # a same-value update is still an update
        fake.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)
        stamps.append(fake.describe(arn)["LastModifiedTime"])
    assert stamps == sorted(set(stamps)), stamps


def test_plain_moto_has_no_last_modified_time_before_the_first_update(plain: Registry) -> None:
    assert "LastModifiedTime" not in plain.describe(plain.package())


def test_created_and_last_modified_by_name_the_caller(fake: Registry) -> None:
    arn = fake.package()
    fake.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    record = fake.describe(arn)
    caller = fake_caller_arn()
    assert record["CreatedBy"] == {"IamIdentity": {"Arn": caller, "PrincipalId": "AKIAIOSFODNN7EXAMPLE"}}
    assert record["LastModifiedBy"]["IamIdentity"]["Arn"] == caller
    group = fake.sm.describe_model_package_group(ModelPackageGroupName="credit-risk")
    assert group["CreatedBy"]["IamIdentity"]["Arn"] == caller  # a required member moto leaves out


def fake_caller_arn() -> str:
    import boto3

    return str(boto3.client("sts", region_name="eu-west-1").get_caller_identity()["Arn"])


# --------------------------------------------------------------------------------------------- ClientToken


def test_update_with_a_repeated_client_token_is_a_no_op(fake: Registry) -> None:
    arn = fake.package()
    fake.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"flag": "1"}, ClientToken="push-1")
    fake.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"flag": "2"}, ClientToken="push-2")
    before = fake.describe(arn)
    again = fake.sm.update_model_package(
        ModelPackageArn=arn, CustomerMetadataProperties={"flag": "1"}, ClientToken="push-1"
    )
    after = fake.describe(arn)
    assert again["ModelPackageArn"] == arn
    assert after["CustomerMetadataProperties"] == {"flag": "2"}
    assert after["LastModifiedTime"] == before["LastModifiedTime"]


def test_plain_moto_applies_a_repeated_client_token_again(plain: Registry) -> None:
    arn = plain.package()
    plain.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"flag": "1"}, ClientToken="push-1")
    plain.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"flag": "2"}, ClientToken="push-2")
    plain.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"flag": "1"}, ClientToken="push-1")
    assert plain.describe(arn)["CustomerMetadataProperties"] == {"flag": "1"}


def test_create_retried_with_the_same_client_token_makes_one_version(fake: Registry) -> None:
    first = fake.package(ClientToken="register-1")
    assert fake.package(ClientToken="register-1") == first
    listed = fake.sm.list_model_packages(ModelPackageGroupName="credit-risk")["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in listed] == [first]


# --------------------------------------------------------------------------------------------- card and life cycle


def test_model_card_and_life_cycle_survive_create_describe_and_list(fake: Registry) -> None:
    arn = fake.package(ModelCard=CARD, ModelLifeCycle=LIFE_CYCLE, SourceUri="s3://ml/credit-risk/1")
    record = fake.describe(arn)
    assert (record["ModelCard"], record["ModelLifeCycle"], record["SourceUri"]) == (
        CARD,
        LIFE_CYCLE,
        "s3://ml/credit-risk/1",
    )
    summary = fake.sm.list_model_packages(ModelPackageGroupName="credit-risk")["ModelPackageSummaryList"][0]
    assert summary["ModelLifeCycle"] == LIFE_CYCLE  # ModelPackageSummary carries ModelLifeCycle
    assert "ModelCard" not in summary and "LastModifiedTime" not in summary  # ... but not these


def test_plain_moto_drops_model_card_and_life_cycle_at_creation(plain: Registry) -> None:
    record = plain.describe(plain.package(ModelCard=CARD, ModelLifeCycle=LIFE_CYCLE))
    assert "ModelCard" not in record and "ModelLifeCycle" not in record


def test_archived_model_card_content_cannot_change(fake: Registry) -> None:
    arn = fake.package(ModelCard={**CARD, "ModelCardStatus": "Archived"})
    with pytest.raises(ClientError) as exc:
        fake.sm.update_model_package(ModelPackageArn=arn, ModelCard={"ModelCardContent": "{}"})
    assert _error(exc) == ("ValidationException", "Model Card is in Archived state")


@pytest.mark.parametrize("stage", ["Pre Production", "Pending_Approval", "-QA", "x" * 64])
def test_life_cycle_names_follow_the_entity_name_pattern(fake: Registry, stage: str) -> None:
    with pytest.raises(ClientError) as exc:
        fake.package(ModelLifeCycle={"Stage": stage, "StageStatus": "InProgress"})
    code, message = _error(exc)
    assert code == "ValidationException" and "modelLifeCycle.stage" in message


@pytest.mark.parametrize("value", ["a,b", '{"json": true}', "quote'd", "x" * 257])
def test_metadata_values_follow_the_documented_character_set(fake: Registry, value: str) -> None:
    arn = fake.package()
    with pytest.raises(ClientError) as exc:
        fake.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"note": value})
    assert _error(exc)[0] == "ValidationException"
    fake.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"note": "Zoë 2025-03-14 ok/fine=+@"})


def test_plain_moto_accepts_metadata_aws_refuses(plain: Registry) -> None:
    arn = plain.package()
    plain.sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"note": "a,b"})
    assert plain.describe(arn)["CustomerMetadataProperties"] == {"note": "a,b"}


# --------------------------------------------------------------------------------------------- backdating, install


def test_backdate_package_sets_creation_time_and_registrant(fake: Registry) -> None:
    arn = fake.package()
    when = dt.datetime(2025, 1, 15, 9, 30, tzinfo=dt.UTC)
    registrant = aws_fake.iam_user_context("arn:aws:sts::123456789012:assumed-role/DS/carol", source_identity="carol")
    aws_fake.backdate_package(arn, when, created_by=registrant)
    record = fake.describe(arn)
    assert record["CreationTime"] == when and record["LastModifiedTime"] == when
    assert record["CreatedBy"] == registrant
    after = fake.sm.list_model_packages(ModelPackageGroupName="credit-risk", CreationTimeAfter=when + dt.timedelta(1))
    assert after["ModelPackageSummaryList"] == []


def test_backdating_an_updated_package_keeps_its_last_modified_time(fake: Registry) -> None:
    arn = fake.package()
    fake.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    modified = fake.describe(arn)["LastModifiedTime"]
    aws_fake.backdate_package(arn, dt.datetime(2025, 1, 15, tzinfo=dt.UTC))
    assert fake.describe(arn)["LastModifiedTime"] == modified
    with pytest.raises(aws_fake.UnknownResource):
        aws_fake.backdate_package(arn.replace("/1", "/9"), dt.datetime(2025, 1, 1))


def test_install_is_idempotent_and_uninstall_restores_moto() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    was_installed = aws_fake.is_installed()
    aws_fake.uninstall()
    moto_update = SageMakerResponse.update_model_package
    try:
        aws_fake.install()
        patched = SageMakerResponse.update_model_package
        aws_fake.install()
        assert SageMakerResponse.update_model_package is patched is not moto_update
        aws_fake.uninstall()
        assert SageMakerResponse.update_model_package is moto_update
    finally:
        if was_installed:
            aws_fake.install()


def test_updates_reach_moto_backend_method_and_a_refused_call_does_not_use_the_token(
    fake: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Harnesses (tests/services/conftest.py ``updates``) wrap SageMakerModelBackend.update_model_package
    to count what reached "AWS" or to refuse a request before processing; the fake keeps that hook."""
    from moto.sagemaker.models import SageMakerModelBackend

    layer_update = SageMakerModelBackend.update_model_package
    seen: list[dict[str, object]] = []
    refusals = [1]  # refuse the first attempt only

    def wrapper(self: SageMakerModelBackend, model_package_arn: str, **members: object) -> str:
        seen.append(members)
        if refusals:
            refusals.pop()
            return model_package_arn  # refused before processing, as a throttled request
        return str(layer_update(self, model_package_arn, **members))

    monkeypatch.setattr(SageMakerModelBackend, "update_model_package", wrapper)
    arn = fake.package()
    for _ in range(2):
        fake.sm.update_model_package(ModelPackageArn=arn, ModelLifeCycle=LIFE_CYCLE, ClientToken="push-9")
    assert [m["client_token"] for m in seen] == ["push-9", "push-9"]
    assert seen[0]["model_life_cycle"] == LIFE_CYCLE
    assert fake.describe(arn)["ModelLifeCycle"] == LIFE_CYCLE  # the second attempt was applied
