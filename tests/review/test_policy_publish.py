"""Publishing policy versions (registry_app/review/policy_publish.py): a version per change, the
version recorded on sign-offs and decisions, open reviews moved to a new version (stale with a
reason where it no longer accepts a sign-off), decided ones keeping theirs, and the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import ProtectedError

from registry_app.audit.log import audit_context
from registry_app.audit.verification import verify_audit_chain
from registry_app.models import (
    ApprovalPolicy,
    AuditLogEntry,
    Decision,
    ModelPackage,
    PolicyVersion,
    PushOutbox,
    SignOff,
)
from registry_app.review.decisions import group_archive, package_revoke
from registry_app.review.policy import PolicySpec
from registry_app.review.policy_publish import stale_reasons
from registry_app.review.queue_state import review_state_verify
from registry_app.review.signoffs import signoff_create
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory
from tests.review.conftest import make_user

pytestmark = pytest.mark.django_db

ROLES = {"ml-lead": 1, "fairness": 1, "compliance": 1}


@pytest.fixture
def people() -> dict[str, Any]:
    return {
        "mlead": make_user("mlead", "ml-lead"),
        "fair": make_user("fair", "fairness"),
        "comp": make_user("comp", "compliance"),
        "admin": make_user("admin", is_staff=True, is_superuser=True),
    }


def policy(**spec: Any) -> ApprovalPolicy:
    return ApprovalPolicy.objects.create(
        name="high-risk", tag_key="RiskTier", tag_value="High", spec={"required_roles": ROLES, **spec}
    )


def edit(row: ApprovalPolicy, actor: Any = None, **spec: Any) -> None:
    row.spec = {**row.spec, **spec}
    with audit_context(actor=actor, via=AuditLogEntry.Via.WEB):
        row.save()


def sign(user: Any, package: Any, role: str, decision: str = "approve") -> Any:
    return signoff_create(user=user, package_id=package.pk, role=role, decision=decision, comment="ok")


def test_a_save_publishes_only_when_spec_or_scope_changed(people: dict[str, Any]) -> None:
    row = policy(sla_hours=48)
    assert list(row.versions.values_list("number", flat=True)) == [1]
    row.save()  # no change
    edit(row, sla_hours=48)  # the same spec again
    assert row.versions.count() == 1
    edit(row, people["admin"], sla_hours=36)
    row.priority = 5  # a scope change alone publishes too
    row.save()
    versions = list(PolicyVersion.objects.filter(policy=row).order_by("number"))
    assert [(v.number, v.spec["sla_hours"], v.priority) for v in versions] == [(1, 48, 0), (2, 36, 0), (3, 36, 5)]
    assert versions[1].published_by == people["admin"] and versions[0].published_by is None
    row.refresh_from_db()
    assert row.current_version == versions[2]
    published = AuditLogEntry.objects.filter(action="policy.published").order_by("seq")
    assert published.count() == 3
    second = published[1]
    assert (second.actor_name, second.via) == ("admin", "web")
    assert second.before == {"version": 1, "digest": versions[0].digest}
    assert second.after["digest"] == versions[1].digest and second.after["label"] == "high-risk v2"
    assert second.after["diff"] == [{"field": "sla_hours", "old": 48, "new": 36}]
    assert verify_audit_chain().ok


def test_signoffs_and_decisions_record_the_version_in_force(people: dict[str, Any]) -> None:
    row = policy()
    package = ModelPackageFactory(group=ModelPackageGroupFactory(tags={"RiskTier": "High"}))
    first = sign(people["mlead"], package, "ml-lead").signoff
    edit(row, sla_hours=10)
    sign(people["fair"], package, "fairness")
    result = sign(people["comp"], package, "compliance")
    labels = [s.policy_version.label for s in SignOff.objects.filter(package=package).order_by("pk")]
    assert labels == ["high-risk v1", "high-risk v2", "high-risk v2"]
    assert first.policy_version.number == 1
    assert result.decision is not None and result.decision.policy_version.label == "high-risk v2"
    # Without a stored policy, the built-in default applies: no version.
    plain = ModelPackageFactory()
    assert sign(people["mlead"], plain, "ml-lead").signoff.policy_version is None


def test_revocation_and_archive_record_the_version(people: dict[str, Any]) -> None:
    policy()
    group = ModelPackageGroupFactory(tags={"RiskTier": "High"})
    approved = ModelPackageFactory(group=group, approval_status="Approved")
    pending = ModelPackageFactory(group=group)
    revocation = package_revoke(user=people["comp"], package_id=approved.pk, justification="drift")
    assert revocation.policy_version.label == "high-risk v1"
    archived = group_archive(user=people["comp"], group_id=group.pk, justification="retired")
    assert [d.policy_version.label for d in archived] == ["high-risk v1"]
    assert archived[0].package == pending


def test_a_role_the_new_version_drops_stales_its_signoffs_with_the_reason(people: dict[str, Any]) -> None:
    row = policy()
    package = ModelPackageFactory(group=ModelPackageGroupFactory(tags={"RiskTier": "High"}))
    mlead = sign(people["mlead"], package, "ml-lead").signoff
    fair = sign(people["fair"], package, "fairness").signoff
    metadata = {**(package.customer_metadata or {}), "FairnessApproved": "true"}  # the flag push was delivered
    ModelPackage.objects.filter(pk=package.pk).update(customer_metadata=metadata)
    edit(row, people["admin"], required_roles={"ml-lead": 1, "compliance": 1})
    mlead.refresh_from_db()
    fair.refresh_from_db()
    assert mlead.stale_at is None and mlead.stale_reason == ""
    assert fair.stale_at is not None and fair.stale_reason == "high-risk v2 no longer requires the fairness role"
    entry = AuditLogEntry.objects.get(action="signoffs.stale")
    assert entry.package_id == package.pk and entry.actor_name == "admin"
    assert entry.after == {"signoff_ids": [fair.pk], "reasons": {str(fair.pk): fair.stale_reason}}
    # The registry still shows the fairness flag the stale approval wrote: a flags push withdraws it.
    withdraw = PushOutbox.objects.get(package=package, kind="flags", flags={"FairnessApproved": None})
    assert withdraw.acting_username == "admin" and withdraw.expected_status == "PendingManualApproval"
    assert review_state_verify(fix=False).differences == 0
    # Compliance completes the review under v2: ml-lead and compliance decide it.
    result = sign(people["comp"], package, "compliance")
    assert result.decision is not None and result.decision.status == "Approved"
    assert result.decision.policy_version.number == 2


def test_a_changed_flag_stales_the_role_approvals_but_a_gate_or_sla_change_stales_nothing(
    people: dict[str, Any],
) -> None:
    row = policy()
    package = ModelPackageFactory(group=ModelPackageGroupFactory(tags={"RiskTier": "High"}))
    mlead = sign(people["mlead"], package, "ml-lead").signoff
    fair = sign(people["fair"], package, "fairness").signoff
    edit(row, sla_hours=12, require_card_approved=False)
    assert not SignOff.objects.filter(stale_at__isnull=False).exists()
    edit(row, role_flags={"fairness": "FairnessOK"})
    fair.refresh_from_db()
    mlead.refresh_from_db()
    assert mlead.stale_at is None
    assert fair.stale_reason == (
        "high-risk v3 records fairness approvals as FairnessOK (was FairnessApproved): approve again"
    )


def test_stale_reasons_is_pure_and_spares_what_still_counts() -> None:
    old = PolicySpec.from_dict({"name": "p", "required_roles": ROLES})
    new = PolicySpec.from_dict(
        {"name": "p", "required_roles": {"ml-lead": 2, "compliance": 1}, "role_flags": {"compliance": "C"}}
    )
    signoffs = [(1, "ml-lead", "approve"), (2, "fairness", "reject"), (3, "compliance", "approve")]
    assert stale_reasons(old, new, "p v2", signoffs) == {
        2: "p v2 no longer requires the fairness role",
        3: "p v2 records compliance approvals as C (was ComplianceApproved): approve again",
    }


def test_decided_packages_keep_their_version(people: dict[str, Any]) -> None:
    row = policy()
    package = ModelPackageFactory(group=ModelPackageGroupFactory(tags={"RiskTier": "High"}))
    for user, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        result = sign(people[user], package, role)
    decision = result.decision
    edit(row, required_roles={"compliance": 1})  # would stale ml-lead and fairness on an open review
    assert not SignOff.objects.filter(package=package, stale_at__isnull=False).exists()
    assert Decision.objects.get(pk=decision.pk).policy_version.label == "high-risk v1"
    assert not AuditLogEntry.objects.filter(action="signoffs.stale").exists()
    # A policy that governed something cannot be deleted: its versions are history.
    with pytest.raises(ProtectedError):
        row.delete()


def test_a_new_policy_taking_over_a_group_moves_its_open_reviews(people: dict[str, Any]) -> None:
    package = ModelPackageFactory(group=ModelPackageGroupFactory(tags={"RiskTier": "High"}))
    signoff = sign(people["mlead"], package, "ml-lead").signoff  # under the built-in default
    assert signoff.policy_version is None
    other = ModelPackageFactory(group=ModelPackageGroupFactory(tags={}))  # stays under the built-in default
    untouched = sign(people["mlead"], other, "ml-lead").signoff
    ApprovalPolicy.objects.create(
        name="high-risk", tag_key="RiskTier", tag_value="High", spec={"required_roles": {"compliance": 1}}
    )
    signoff.refresh_from_db()
    assert signoff.stale_reason == "high-risk v1 no longer requires the ml-lead role"
    untouched.refresh_from_db()
    assert untouched.stale_at is None and untouched.stale_reason == ""
