"""The policy exception and sign-off withdrawal services: rules, audit, stored state kept exact."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from registry_app.models import ApprovalPolicy, AuditLogEntry, Decision, PolicyException, PushOutbox, SignOff
from registry_app.review.decisions import policy_exception_record
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.queue_state import review_state_verify
from registry_app.review.signoffs import signoff_create, signoff_withdraw
from tests.factories import EvaluationReportFactory, MetricFactory, ModelPackageFactory
from tests.review.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def people() -> dict[str, Any]:
    return {
        "mlead": make_user("mlead", "ml-lead"),
        "fair": make_user("fair", "fairness"),
        "comp": make_user("comp", "compliance"),
    }


def package_with_auc(value: float) -> Any:
    package = ModelPackageFactory()
    MetricFactory(report=EvaluationReportFactory(package=package), name="auc", value=value)
    return package


def gate(threshold: str = "0.85") -> None:
    ApprovalPolicy.objects.create(name="g", is_default=True, spec={"name": "g", "gates": [f"auc >= {threshold}"]})


def test_blocked_approval_then_exception_then_the_last_approval_decides(people: dict[str, Any]) -> None:
    other = package_with_auc(0.842)
    gate()
    with pytest.raises(SignOffNotAllowed) as refused:
        signoff_create(user=people["mlead"], package_id=other.pk, role="ml-lead", decision="approve", comment="")
    assert refused.value.code == "gate_blocked" and "auc 0.842 < 0.85" in refused.value.message
    ApprovalPolicy.objects.all().delete()  # approvals made before the gate existed (a policy edit)
    for name, role in (("mlead", "ml-lead"), ("fair", "fairness")):
        signoff_create(user=people[name], package_id=other.pk, role=role, decision="approve", comment="")
    gate()
    # compliance may not approve (blocked) but records the exception; then approves, which decides.
    exception = policy_exception_record(user=people["comp"], package_id=other.pk, justification="board accepted")
    assert exception.gates == [{"gate": "auc >= 0.85", "shortfall": "auc 0.842 < 0.85"}]
    assert not Decision.objects.filter(package=other).exists()  # compliance's own approval is still missing
    result = signoff_create(user=people["comp"], package_id=other.pk, role="compliance", decision="approve", comment="")
    assert result.decision is not None
    assert "Policy exception by comp" in result.decision.description and "board accepted" in result.decision.description
    assert review_state_verify(fix=False).differences == 0


def test_exception_completes_a_decision_when_only_the_gate_was_missing(people: dict[str, Any]) -> None:
    package = package_with_auc(0.842)
    gate()
    from tests.views.test_review_support import signoff_row

    for name, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        signoff_row(package, people[name], role)
    policy_exception_record(user=people["comp"], package_id=package.pk, justification="x" * 800)
    decision = Decision.objects.get(package=package)
    assert decision.status == "Approved" and decision.decided_by == people["comp"]
    assert len(decision.description) <= 1024 and "Policy exception by comp" in decision.description
    assert PushOutbox.objects.get(decision=decision).target_description == decision.description
    assert AuditLogEntry.objects.filter(action="policy.exception").count() == 1
    assert AuditLogEntry.objects.filter(action="decision.policy").count() == 1


def test_exception_rules(people: dict[str, Any]) -> None:
    package = package_with_auc(0.842)
    gate()
    with pytest.raises(PermissionDenied):
        policy_exception_record(user=people["mlead"], package_id=package.pk, justification="why")
    with pytest.raises(ValueError):
        policy_exception_record(user=people["comp"], package_id=package.pk, justification="  ")
    passing = package_with_auc(0.9)
    with pytest.raises(SignOffNotAllowed) as exc:
        policy_exception_record(user=people["comp"], package_id=passing.pk, justification="why")
    assert exc.value.code == "not_blocked"
    assert not PolicyException.objects.exists()


def test_a_content_change_voids_the_exception(people: dict[str, Any]) -> None:
    package = package_with_auc(0.842)
    gate()
    policy_exception_record(user=people["comp"], package_id=package.pk, justification="accepted")
    signoff_create(user=people["mlead"], package_id=package.pk, role="ml-lead", decision="approve", comment="")
    package.description = "retrained"
    package.save(update_fields=["description"])
    with pytest.raises(SignOffNotAllowed) as exc:
        signoff_create(user=people["fair"], package_id=package.pk, role="fairness", decision="approve", comment="")
    assert exc.value.code == "gate_blocked"


def test_withdrawal_rules_and_state(people: dict[str, Any]) -> None:
    package = package_with_auc(0.9)
    mine = signoff_create(user=people["mlead"], package_id=package.pk, role="ml-lead", decision="approve", comment="")
    with pytest.raises(SignOffNotAllowed) as exc:
        signoff_withdraw(user=people["fair"], package_id=package.pk, signoff_id=mine.signoff.pk)
    assert exc.value.code == "forbidden"
    signoff_withdraw(user=people["mlead"], package_id=package.pk, signoff_id=mine.signoff.pk)
    assert SignOff.objects.get(pk=mine.signoff.pk).withdrawn_at is not None
    assert review_state_verify(fix=False).differences == 0
    with pytest.raises(SignOffNotAllowed) as again:
        signoff_withdraw(user=people["mlead"], package_id=package.pk, signoff_id=mine.signoff.pk)
    assert again.value.code == "already_withdrawn"
    # The same person may sign again, and a decision then closes withdrawal.
    signoff_create(user=people["mlead"], package_id=package.pk, role="ml-lead", decision="approve", comment="")
    rejected = signoff_create(
        user=people["fair"], package_id=package.pk, role="fairness", decision="reject", comment="no"
    )
    assert rejected.decision is not None
    latest = SignOff.objects.filter(user=people["mlead"], withdrawn_at__isnull=True).get()
    with pytest.raises(SignOffNotAllowed) as decided:
        signoff_withdraw(user=people["mlead"], package_id=package.pk, signoff_id=latest.pk)
    assert decided.value.code == "already_decided"
    assert AuditLogEntry.objects.filter(action="signoff.withdrawn").count() == 1
