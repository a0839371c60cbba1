"""Automated approvals: a policy may accept a pipeline's own approval (on metrics) for deployment."""

from __future__ import annotations

from typing import Any

import pytest

from registry_app.gate.answers import check_package
from registry_app.models import CloudTrailEvent
from registry_app.review.policy import PolicyError, PolicySpec
from registry_app.review.policy.spec import AutomatedApprovals, principal_arns
from tests.factories import ACCOUNT_ID
from tests.gate.builders import PIPELINE_ARN, approve_outside, automated_policy, package_with_metrics

PATTERN = f"arn:aws:iam::{ACCOUNT_ID}:role/SageMakerPipeline*"


# --------------------------------------------------------------------------------------------- the policy key


def test_the_policy_key_round_trips_and_is_optional() -> None:
    data = {
        "name": "low-risk",
        "gates": ["auc >= 0.85"],
        "accept_automated_approvals": {"principals": [PATTERN]},
    }
    policy = PolicySpec.from_dict(data)
    assert policy.accept_automated_approvals == AutomatedApprovals((PATTERN,), gates_must_pass=True)
    assert policy.to_dict()["accept_automated_approvals"] == {"principals": [PATTERN], "gates_must_pass": True}
    assert PolicySpec.from_dict(policy.to_dict()) == policy
    assert "accept_automated_approvals" not in PolicySpec.from_dict({"name": "plain"}).to_dict()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("yes", "must be an object"),
        ({"principals": []}, "at least one"),
        ({"principals": "arn:aws:iam::111122223333:role/x"}, "must be a list"),
        ({"principals": ["*"]}, "not an IAM ARN pattern"),
        ({"principals": ["arn:aws:iam::*:role/Pipeline"]}, "not an IAM ARN pattern"),
        ({"principals": ["arn:aws:s3:::bucket/*"]}, "not an IAM ARN pattern"),
        ({"principals": [PATTERN], "gates_must_pass": "true"}, "true or false"),
        ({"principals": [PATTERN], "who": 1}, "unknown accept_automated_approvals key"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(value: Any, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        PolicySpec.from_dict({"name": "p", "gates": ["auc >= 0.8"], "accept_automated_approvals": value})


def test_requiring_gates_needs_gates() -> None:
    with pytest.raises(PolicyError, match="needs at least one gate"):
        PolicySpec.from_dict({"name": "p", "accept_automated_approvals": {"principals": [PATTERN]}})
    lax = PolicySpec.from_dict(
        {"name": "p", "accept_automated_approvals": {"principals": [PATTERN], "gates_must_pass": False}}
    )
    assert lax.accept_automated_approvals is not None


def test_an_assumed_role_session_matches_its_role() -> None:
    accepts = AutomatedApprovals((PATTERN,))
    assert principal_arns(PIPELINE_ARN)[1] == f"arn:aws:iam::{ACCOUNT_ID}:role/SageMakerPipelineApprover"
    assert accepts.matching_pattern(PIPELINE_ARN) == PATTERN
    assert accepts.matching_pattern(f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/DataScientist/sageMakerPipelineX") is None
    assert accepts.matching_pattern("arn:aws:sts::999988887777:assumed-role/SageMakerPipelineApprover/x") is None
    # regex characters in a pattern are literal
    assert (
        AutomatedApprovals((f"arn:aws:iam::{ACCOUNT_ID}:role/a.b",)).matching_pattern(
            f"arn:aws:iam::{ACCOUNT_ID}:role/aXb"
        )
        is None
    )


# --------------------------------------------------------------------------------------------- the gate


@pytest.mark.django_db
def test_an_accepted_pipeline_approval_is_deployable_and_says_so(personas: dict[str, Any]) -> None:
    automated_policy()
    package = package_with_metrics(auc=0.91)
    flagged = approve_outside(package)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and answer.deployable, answer.reasons
    evidence = answer.evidence
    assert evidence.approved_automatically and evidence.approved_via == "automated"
    assert evidence.automated is not None
    assert evidence.automated.principal == PIPELINE_ARN
    assert (evidence.automated.principal_source, evidence.automated.matched_pattern) == ("cloudtrail", PATTERN)
    assert evidence.cloudtrail_event_id == flagged.event.event_id
    assert [(g.gate, g.status, g.observed) for g in evidence.gates] == [("auc >= 0.85", "pass", 0.91)]
    assert evidence.signoffs == [] and evidence.reviewed_fingerprint is None


@pytest.mark.django_db
def test_another_principal_is_not_accepted(personas: dict[str, Any]) -> None:
    automated_policy()
    package = package_with_metrics(auc=0.91)
    approve_outside(package, actor="dave", role="DataScientist")
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and [r.code for r in answer.reasons] == ["automated_principal_not_accepted"]
    assert answer.evidence.approved_via == "outside" and not answer.evidence.approved_automatically


@pytest.mark.django_db
def test_failing_gates_refuse_an_automated_approval(personas: dict[str, Any]) -> None:
    automated_policy()
    package = package_with_metrics(auc=0.70)
    approve_outside(package)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and [r.code for r in answer.reasons] == ["automated_gates_failed"]
    assert "0.70 is below 0.85" in answer.reasons[0].message


@pytest.mark.django_db
def test_an_unknown_principal_is_refused_until_cloudtrail_says_who(personas: dict[str, Any]) -> None:
    automated_policy()
    package = package_with_metrics()
    flagged = approve_outside(package, with_event=False)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and [r.code for r in answer.reasons] == ["automated_principal_unknown"]
    # the CloudTrail ingest catches up: the call is matched on the next ask
    from tests.gate.builders import approval_call

    approval_call(package, flagged.observed_at, actor="pipeline-run-42", role="SageMakerPipelineApprover")
    assert CloudTrailEvent.objects.count() == 1
    assert check_package(personas["viewer"], package.arn).deployable  # type: ignore[union-attr]


@pytest.mark.django_db
def test_a_current_rejection_blocks_an_automated_approval(personas: dict[str, Any]) -> None:
    from registry_app.models import SignOff
    from registry_app.review.state import package_fingerprint
    from tests.gate.builders import fresh

    automated_policy()
    package = package_with_metrics()
    fingerprint, _ = package_fingerprint(fresh(package))
    SignOff.objects.create(
        package=package,
        user=personas["fair"],
        role="fairness",
        decision="reject",
        comment="DI",
        fingerprint=fingerprint,
    )
    approve_outside(package)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and [r.code for r in answer.reasons] == ["rejected_by_reviewer"]


@pytest.mark.django_db
def test_without_the_policy_key_a_pipeline_approval_is_refused(personas: dict[str, Any]) -> None:
    package = package_with_metrics()
    approve_outside(package)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and [r.code for r in answer.reasons] == ["approved_outside"]
