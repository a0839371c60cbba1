"""The sign-off workflow writes audit entries inside its own transactions."""

from __future__ import annotations

from typing import Any

import pytest

from registry_app.models import AuditLogEntry, Decision, ModelPackage, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.services.audit import verify_audit_chain
from registry_app.services.decisions import group_archive, package_revoke
from registry_app.services.signoffs import signoff_create, signoffs_mark_stale
from tests.audit.conftest import make_user
from tests.factories import ModelPackageFactory

pytestmark = pytest.mark.django_db


def _entries(package: ModelPackage) -> list[tuple[str, str, str]]:
    return list(
        AuditLogEntry.objects.filter(package=package).order_by("seq").values_list("action", "actor_name", "via")
    )


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    return {
        "ml-lead": make_user("lena", "ml-lead"),
        "fairness": make_user("farid", "fairness"),
        "compliance": make_user("connie", "compliance"),
    }


def test_signoffs_and_the_policy_decision(package: ModelPackage, people: dict[str, Any]) -> None:
    for role, user in people.items():
        signoff_create(user=user, package_id=package.pk, role=role, decision="approve", comment="looks fine")
    actions = _entries(package)
    assert actions[:3] == [
        ("signoff.recorded", "lena", "web"),
        ("signoff.recorded", "farid", "web"),
        ("signoff.recorded", "connie", "web"),
    ]
    recorded = AuditLogEntry.objects.filter(action="signoff.recorded").first()
    assert recorded is not None and recorded.after["fingerprint"] == SignOff.objects.first().fingerprint  # type: ignore[union-attr]
    (made,) = Decision.objects.filter(package=package)
    assert made.kind == Decision.Kind.POLICY and made.status == ApprovalStatus.APPROVED
    assert actions[3:] == [("decision.policy", "connie", "web")]
    assert verify_audit_chain().ok


def test_rejection_decision(package: ModelPackage, people: dict[str, Any]) -> None:
    signoff_create(
        user=people["fairness"], package_id=package.pk, role="fairness", decision="reject", comment="bias too high"
    )
    assert [a for a, _, _ in _entries(package)] == ["signoff.recorded", "decision.rejection"]


def test_stale_signoffs_are_audited(package: ModelPackage, people: dict[str, Any]) -> None:
    signoff_create(user=people["ml-lead"], package_id=package.pk, role="ml-lead", decision="approve", comment="")
    package.description = "retrained on new data"
    package.save(update_fields=["description"])
    assert signoffs_mark_stale(package) == 1
    entry = AuditLogEntry.objects.get(action="signoffs.marked_stale")
    assert entry.via == "sync" and entry.after["signoff_ids"] == [SignOff.objects.get().pk]
    assert signoffs_mark_stale(package) == 0
    assert AuditLogEntry.objects.filter(action="signoffs.marked_stale").count() == 1


def test_revocation_and_archive(people: dict[str, Any]) -> None:
    approved = ModelPackageFactory(approval_status=ApprovalStatus.APPROVED)
    other = ModelPackageFactory(group=approved.group, approval_status=ApprovalStatus.PENDING)
    package_revoke(user=people["compliance"], package_id=approved.pk, justification="model drift")
    assert _entries(approved) == [("decision.revocation", "connie", "web")]
    group_archive(user=people["compliance"], group_id=approved.group_id, justification="retired")
    assert ("decision.archive", "connie", "web") in _entries(other)
    archived = AuditLogEntry.objects.get(action="group.archived")
    assert archived.subject_repr == approved.group.name and archived.after["justification"] == "retired"
    assert verify_audit_chain().ok
