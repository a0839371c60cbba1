"""Sign-off rules one by one: each refusal is clear, separation of duties, registrants, policies."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from registry_app.models import ApprovalPolicy, Decision, ModelPackage, PushOutbox, SignOff
from registry_app.permissions import principal_names, user_roles
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.signoffs import signoff_create
from registry_app.review.state import is_registrant
from tests.factories import EvaluationReportFactory, MetricFactory, ModelPackageFactory, ModelPackageGroupFactory
from tests.review.conftest import make_user

pytestmark = pytest.mark.django_db


def sign(user: Any, package: ModelPackage, role: str, decision: str = "approve", comment: str = "") -> Any:
    return signoff_create(user=user, package_id=package.pk, role=role, decision=decision, comment=comment)


def refusal(
    user: Any, package: ModelPackage, role: str, decision: str = "approve", comment: str = ""
) -> SignOffNotAllowed:
    count = SignOff.objects.count()
    with pytest.raises(SignOffNotAllowed) as exc:
        sign(user, package, role, decision, comment)
    assert SignOff.objects.count() == count
    assert exc.value.message
    return exc.value


def test_signing_twice(personas: dict[str, Any]) -> None:
    package = ModelPackageFactory()
    sign(personas["mlead"], package, "ml-lead")
    error = refusal(personas["mlead"], package, "ml-lead")
    assert error.code == "already_signed"
    assert "already signed off" in error.message


def test_one_person_signs_one_role(db: None) -> None:
    both = make_user("dual", "ml-lead", "fairness")
    package = ModelPackageFactory()
    sign(both, package, "ml-lead")
    error = refusal(both, package, "fairness")
    assert error.code == "separation_of_duties"
    assert "one role" in error.message


def test_role_not_held(personas: dict[str, Any]) -> None:
    error = refusal(personas["fair"], ModelPackageFactory(), "compliance")
    assert error.code == "role_not_held"
    assert "fair does not hold the compliance role" in error.message


def test_role_not_in_policy(personas: dict[str, Any]) -> None:
    error = refusal(personas["viewer"], ModelPackageFactory(), "viewer")
    assert error.code == "role_not_required"


def test_decided_and_deleted_packages(personas: dict[str, Any]) -> None:
    assert refusal(personas["mlead"], ModelPackageFactory(approval_status="Approved"), "ml-lead").code == (
        "already_decided"
    )
    gone = ModelPackageFactory(deleted_at=timezone.now())
    assert refusal(personas["mlead"], gone, "ml-lead").code == "deleted"


def test_decision_on_its_way_counts_as_decided(personas: dict[str, Any]) -> None:
    """The mirror still says pending, but the dashboard already decided: nobody signs on."""
    package = ModelPackageFactory()
    sign(personas["fair"], package, "fairness", "reject", "bias too high")
    assert ModelPackage.objects.get(pk=package.pk).approval_status == "PendingManualApproval"
    error = refusal(personas["mlead"], package, "ml-lead")
    assert error.code == "already_decided" and "Rejected" in error.message
    assert Decision.objects.filter(package=package).count() == 1


def test_unknown_package_and_bad_input(personas: dict[str, Any]) -> None:
    with pytest.raises(SignOffNotAllowed) as exc:
        signoff_create(user=personas["mlead"], package_id=987654, role="ml-lead", decision="approve", comment="")
    assert exc.value.code == "not_found"
    package = ModelPackageFactory()
    assert refusal(personas["mlead"], package, "ml-lead", "maybe").code == "invalid_decision"
    assert refusal(personas["mlead"], package, "ml-lead", "reject", "").code == "comment_required"
    assert refusal(personas["mlead"], package, "ml-lead", "approve", "x" * 5000).code == "comment_too_long"
    personas["mlead"].is_active = False
    assert refusal(personas["mlead"], package, "ml-lead").code == "not_authenticated"


@pytest.mark.parametrize(
    "created_by",
    [
        {"IamIdentity": {"Arn": "arn:aws:sts::111122223333:assumed-role/Pipeline/run-1", "SourceIdentity": "Mlead"}},
        {"IamIdentity": {"Arn": "arn:aws:sts::111122223333:assumed-role/DataScientist/MLEAD"}},
        {"IamIdentity": {"Arn": "arn:aws:iam::111122223333:user/team/mlead"}},
        {"UserProfileName": "mlead", "DomainId": "d-abc"},
    ],
    ids=["source-identity", "session-name", "iam-user", "studio-profile"],
)
def test_registrant_cannot_sign(personas: dict[str, Any], created_by: dict[str, Any]) -> None:
    package = ModelPackageFactory(created_by=created_by)
    assert is_registrant(package, personas["mlead"])
    assert not is_registrant(package, personas["fair"])
    error = refusal(personas["mlead"], package, "ml-lead")
    assert error.code == "registrant"
    assert "registered this model package" in error.message
    sign(personas["fair"], package, "fairness")  # others still may


def test_principal_names() -> None:
    assert principal_names(
        {
            "IamIdentity": {"Arn": "arn:aws:sts::1:assumed-role/R/alice", "SourceIdentity": "bob"},
            "UserProfileName": "Bob",
        }
    ) == ["bob", "alice"]
    assert principal_names({"IamIdentity": {"Arn": "arn:aws:iam::1:root"}}) == []
    assert principal_names({"IamIdentity": {"Arn": "arn:aws:sts::1:federated-user/carol"}}) == ["carol"]
    assert principal_names(None) == []


def test_user_roles_are_cached_per_user_object(personas: dict[str, Any], django_assert_num_queries: Any) -> None:
    user = personas["comp"]
    with django_assert_num_queries(1):
        assert user_roles(user) == {"compliance"}
        assert user_roles(user) == {"compliance"}
    user_roles(user).add("mutated")
    assert user_roles(user) == {"compliance"}


def test_flags_wait_until_a_role_is_complete(db: None) -> None:
    """With two ml-lead sign-offs required, the flag is written by the second one only."""
    ApprovalPolicy.objects.create(
        name="strict",
        is_default=True,
        spec={"name": "strict", "required_roles": {"ml-lead": 2, "compliance": 1}},
    )
    package = ModelPackageFactory()
    first = sign(make_user("lead1", "ml-lead"), package, "ml-lead")
    assert first.pushes == []
    second = sign(make_user("lead2", "ml-lead"), package, "ml-lead")
    assert [p.flags for p in second.pushes] == [{"MLEngineerApproved": "true"}]
    error = refusal(make_user("lead3", "ml-lead"), package, "ml-lead")
    assert error.code == "role_complete"
    final = sign(make_user("officer", "compliance"), package, "compliance")
    assert final.result.decision == "Approved"
    decision_push = final.pushes[-1]
    assert decision_push.flags == {"MLEngineerApproved": "true", "ComplianceApproved": "true"}
    assert "ml-lead lead1" in decision_push.target_description and "ml-lead lead2" in decision_push.target_description


def test_tag_policy_with_gates_and_card(db: None) -> None:
    """A RiskTier=High override adds a metric gate: a failing gate refuses approvals (issue 11; they
    used to be recorded and leave the version pending for nobody), a rejection is still possible."""
    ApprovalPolicy.objects.create(
        name="high-risk",
        tag_key="RiskTier",
        tag_value="High",
        spec={"required_roles": {"ml-lead": 1}, "gates": ["auc >= 0.95"], "role_flags": {"ml-lead": "LeadOK"}},
    )
    group = ModelPackageGroupFactory(tags={"RiskTier": "High"})
    package = ModelPackageFactory(group=group)
    MetricFactory(report=EvaluationReportFactory(package=package), name="auc", value=0.91)
    refused = refusal(make_user("lead", "ml-lead"), package, "ml-lead")
    assert refused.code == "gate_blocked"
    assert "auc 0.91 < 0.95" in refused.message
    assert not PushOutbox.objects.filter(package=package).exists()
    result = sign(make_user("lead2", "ml-lead"), package, "ml-lead", "reject", "auc too low")
    assert result.decision is not None and result.decision.status == "Rejected"


def test_decision_rows_and_description_limit(db: None) -> None:
    package = ModelPackageFactory()
    result = sign(make_user("f" * 140, "fairness"), package, "fairness", "reject", "x " * 2000)
    decision = result.decision
    assert decision is not None and decision.status == "Rejected"
    assert len(decision.description) <= 1024
    push = PushOutbox.objects.get(decision=decision)
    assert push.target_description == decision.description and push.expected_status == "PendingManualApproval"
    assert push.acting_username == "f" * 140
