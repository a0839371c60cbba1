"""The deploy gate's rules: which Approved versions are deployable, which are skipped, and why."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from registry_app.gate.answers import check_package, latest_deployable
from registry_app.models import ApprovalPolicy, OutsideDecision, PushOutbox
from registry_app.review.staleness import signoffs_mark_stale
from tests.factories import ModelPackageGroupFactory
from tests.gate.builders import (
    approve_outside,
    approve_via_dashboard,
    change_content,
    fresh,
    package_with_metrics,
    revoke,
)

pytestmark = pytest.mark.django_db


def codes(assessment: Any) -> list[str]:
    return [r.code for r in assessment.reasons]


def test_a_dashboard_approval_is_deployable_with_its_evidence(personas: dict[str, Any]) -> None:
    package = package_with_metrics(auc=0.93)
    decision = approve_via_dashboard(package, personas)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and answer.deployable, answer.reasons
    evidence = answer.evidence
    assert (evidence.arn, evidence.version, evidence.approved_via) == (package.arn, package.version, "dashboard")
    assert not evidence.approved_automatically
    assert evidence.decision_id == decision.pk and evidence.approved_by == "comp"
    assert evidence.approved_at is not None
    assert evidence.policy == "default"
    assert evidence.reviewed_fingerprint == evidence.current_fingerprint
    assert [(s.user, s.role, s.current) for s in evidence.signoffs] == [
        ("mlead", "ml-lead", True),
        ("fair", "fairness", True),
        ("comp", "compliance", True),
    ]
    assert evidence.signoffs[0].comment == "ok by ml-lead"
    assert evidence.cloudtrail_event_id  # the UpdateModelPackage the push made
    assert [(m.name, m.value) for m in evidence.metrics] == [("auc", 0.93)]
    assert evidence.reproducibility["GitCommitSha"] and evidence.missing_reproducibility == []
    assert evidence.generated_by and evidence.training_job and ":training-job/" in evidence.training_job


def test_content_changed_after_review_is_refused_and_says_what_changed(personas: dict[str, Any]) -> None:
    package = package_with_metrics()
    approve_via_dashboard(package, personas)
    change_content(package)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and not answer.deployable
    assert codes(answer) == ["content_changed"]
    assert answer.evidence.changed_since_review == ["description"]
    assert answer.evidence.reviewed_fingerprint != answer.evidence.current_fingerprint
    assert not any(s.current for s in answer.evidence.signoffs)


def test_signoffs_marked_stale_stay_refused_even_if_the_content_changes_back(personas: dict[str, Any]) -> None:
    package = package_with_metrics()
    approve_via_dashboard(package, personas)
    original = package.description
    change_content(package)
    assert signoffs_mark_stale(fresh(package)) == 3
    change_content(package, original)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and codes(answer) == ["content_changed"]


def test_a_revocation_is_refused_while_on_its_way_and_once_delivered(personas: dict[str, Any]) -> None:
    package = package_with_metrics()
    approve_via_dashboard(package, personas)
    revoke(package, personas)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and codes(answer) == ["revoked"]
    assert answer.evidence.effective_status == "Rejected" and answer.evidence.revoked_at is not None
    PushOutbox.objects.filter(package=package, decision__kind="revocation").update(state="failed")
    assert codes(check_package(personas["viewer"], package.arn)) == ["revoked"]


def test_a_delivered_revocation_is_not_approved_and_revoked(personas: dict[str, Any]) -> None:
    package = package_with_metrics()
    approve_via_dashboard(package, personas)
    revoke(package, personas, delivered=True)
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and codes(answer) == ["not_approved_in_registry", "revoked"]


def test_approved_outside_the_dashboard_is_refused(personas: dict[str, Any]) -> None:
    package = package_with_metrics()
    flagged = approve_outside(package, actor="dave", role="DataScientist")
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and codes(answer) == ["approved_outside"]
    assert answer.evidence.approved_via == "outside"
    assert answer.evidence.cloudtrail_event_id == flagged.event.event_id
    assert "dave" in answer.reasons[0].message


def test_an_outside_change_after_the_dashboard_approval_wins(personas: dict[str, Any]) -> None:
    """Approved by the dashboard, then set Pending and Approved again in Studio: the present
    Approved is not the dashboard's."""
    package = package_with_metrics()
    approve_via_dashboard(package, personas)
    later = timezone.now() + dt.timedelta(minutes=5)
    OutsideDecision.objects.create(package=package, observed_at=later, from_status="Approved", to_status="Pending")
    OutsideDecision.objects.create(
        package=package, observed_at=later + dt.timedelta(minutes=1), from_status="Pending", to_status="Approved"
    )
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and codes(answer) == ["approved_outside"]


def test_approved_before_the_dashboard_watched_is_refused(personas: dict[str, Any]) -> None:
    package = package_with_metrics(approval_status="Approved")
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and codes(answer) == ["not_approved_by_dashboard"]


def test_an_approval_not_yet_delivered_is_on_its_way(personas: dict[str, Any]) -> None:
    package = package_with_metrics()
    approve_via_dashboard(package, personas)
    PushOutbox.objects.filter(package=package).update(state=PushOutbox.State.PENDING, sent_at=None)
    type(package).objects.filter(pk=package.pk).update(approval_status="PendingManualApproval")
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None
    assert codes(answer) == ["not_approved_in_registry", "decision_pending", "approval_not_delivered"]


def test_a_policy_made_stricter_after_the_approval_is_refused(personas: dict[str, Any]) -> None:
    package = package_with_metrics(auc=0.80)
    approve_via_dashboard(package, personas)
    ApprovalPolicy.objects.create(
        name="stricter",
        is_default=True,
        spec={
            "name": "stricter",
            "required_roles": {"ml-lead": 1, "fairness": 1, "compliance": 1},
            "gates": ["auc >= 0.85"],
        },
    )
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and codes(answer) == ["policy_not_satisfied"]
    assert "auc" in answer.reasons[0].message
    assert [(g.gate, g.status) for g in answer.evidence.gates] == [("auc >= 0.85", "fail")]


def test_latest_skips_newer_refused_versions_and_says_why(personas: dict[str, Any]) -> None:
    group = ModelPackageGroupFactory(name="fraud-detector")
    v1 = package_with_metrics(group, version=1)
    v2 = package_with_metrics(group, version=2)
    v3 = package_with_metrics(group, version=3)
    v4 = package_with_metrics(group, version=4)
    package_with_metrics(group, version=5)  # pending: not a candidate, not mentioned
    for package in (v1, v2, v3):
        approve_via_dashboard(package, personas)
    change_content(v2)
    revoke(v3, personas)
    approve_outside(v4)
    answer = latest_deployable(personas["viewer"], group_name="fraud-detector")
    assert answer is not None and answer.found is not None
    assert answer.found.evidence.version == 1
    assert [(k.version, [r.code for r in k.reasons]) for k in answer.skipped] == [
        (4, ["approved_outside"]),
        (3, ["revoked"]),
        (2, ["content_changed"]),
    ]


def test_latest_without_a_deployable_version(personas: dict[str, Any]) -> None:
    group = ModelPackageGroupFactory(name="churn")
    package_with_metrics(group, version=1, approval_status="Approved")
    answer = latest_deployable(personas["viewer"], group_name="churn")
    assert answer is not None and answer.found is None
    assert [k.version for k in answer.skipped] == [1] and not answer.truncated
    assert latest_deployable(personas["viewer"], group_name="no-such-group") is None


def test_nobody_without_an_active_account_gets_an_answer(personas: dict[str, Any]) -> None:
    package = package_with_metrics()
    approve_via_dashboard(package, personas)
    personas["viewer"].is_active = False
    assert check_package(personas["viewer"], package.arn) is None
    assert latest_deployable(personas["viewer"], group_name=package.group.name) is None


def test_the_approval_event_is_the_pushing_persons_call(personas: dict[str, Any]) -> None:
    """The push acts with the last signer as SourceIdentity: their UpdateModelPackage is the evidence,
    even when another call that set Approved lies closer in time."""
    from registry_app.models import CloudTrailEvent
    from tests.gate.builders import approval_call

    package = package_with_metrics()
    approve_via_dashboard(package, personas)
    pushed = CloudTrailEvent.objects.get()
    sent = PushOutbox.objects.filter(package=package, kind="decision").get().sent_at
    approval_call(package, sent, actor="dave", role="DataScientist")
    answer = check_package(personas["viewer"], package.arn)
    assert answer is not None and answer.evidence.cloudtrail_event_id == pushed.event_id
