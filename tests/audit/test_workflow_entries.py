"""The sign-off workflow writes audit entries inside its own transactions."""

from __future__ import annotations

from typing import Any

import pytest

from registry_app.audit.log import verify_audit_chain
from registry_app.models import AuditLogEntry, Decision, ModelPackage, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.review.decisions import group_archive, package_revoke
from registry_app.review.signoffs import signoff_create
from registry_app.review.staleness import signoffs_mark_stale
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


class FakeRegistry:
    """Stands in for ``RegistryClient``: describe returns ``statuses`` in turn; update may fail."""

    def __init__(self, package: ModelPackage, *statuses: str, fail: bool = False) -> None:
        self.package, self.statuses, self.fail = package, list(statuses), fail

    def describe_package(self, arn: str) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"ModelPackageArn": arn, "ModelApprovalStatus": status, "CustomerMetadataProperties": {}}

    def update_package(self, **params: Any) -> None:
        if self.fail:
            from registry_app.aws.errors import AccessDeniedError

            raise AccessDeniedError("not allowed", operation="UpdateModelPackage", code="AccessDenied")


def _push(package: ModelPackage) -> Any:
    from registry_app.models import PushOutbox

    return PushOutbox.objects.create(
        package=package,
        kind=PushOutbox.Kind.DECISION,
        target_status=ApprovalStatus.APPROVED,
        target_description="Approved via governance dashboard",
        expected_status=ApprovalStatus.PENDING,
        acting_username="connie",
    )


def test_push_outcomes_are_audited(package: ModelPackage) -> None:
    from registry_app.review.push import push_execute, push_retry

    sent = _push(package)
    push_execute(sent.pk, client=FakeRegistry(package, ApprovalStatus.PENDING, ApprovalStatus.APPROVED))  # type: ignore[arg-type]
    conflicting = _push(package)
    push_execute(conflicting.pk, client=FakeRegistry(package, ApprovalStatus.REJECTED))  # type: ignore[arg-type]
    failing = _push(package)
    push_execute(failing.pk, client=FakeRegistry(package, ApprovalStatus.PENDING, fail=True))  # type: ignore[arg-type]
    staff = make_user("stan", is_staff=True)
    push_retry(user=staff, push_id=failing.pk)
    entries = list(AuditLogEntry.objects.filter(action__startswith="push.").order_by("seq"))
    assert [(e.action, e.actor_name, e.via, e.correlation_id) for e in entries] == [
        ("push.sent", "connie", "task", str(sent.pk)),
        ("push.conflict", "connie", "task", str(conflicting.pk)),
        ("push.failed", "connie", "task", str(failing.pk)),
        ("push.retried", "stan", "web", str(failing.pk)),
    ]
    assert entries[1].after["conflict_detail"]["found_status"] == ApprovalStatus.REJECTED
    assert "not allowed" in entries[2].after["last_error"]
    assert verify_audit_chain().ok
