"""Issue 15: revalidation sign-offs (``review/revalidation.py``): the first review's rules, the
outcome, and the ``LastRevalidated`` push on the AWS-faithful fake."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from registry_app.models import ApprovalPolicy, AuditLogEntry, PushOutbox, Revalidation, RevalidationSignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.revalidation import (
    LAST_REVALIDATED_KEY,
    revalidation_signoff_create,
    revalidation_start,
)
from registry_app.review.revalidation_read import revalidation_clocks
from registry_app.review.state import package_fingerprint
from tests.factories import ModelPackageFactory, PackageObservationFactory, user_context
from tests.review.conftest import Outbox, Registry

pytestmark = pytest.mark.django_db

ROLES = (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance"))


@pytest.fixture(autouse=True)
def yearly() -> None:
    ApprovalPolicy.objects.create(name="high", spec={"name": "high", "revalidate_every_days": 365}, is_default=True)


def _approved(**kw: Any) -> Any:
    return ModelPackageFactory(approval_status=ApprovalStatus.APPROVED, **kw)


def _sign(user: Any, package: Any, role: str, decision: str = "approve", **kw: Any) -> Any:
    return revalidation_signoff_create(
        user=user, package_id=package.pk, role=role, decision=decision, comment=kw.pop("comment", "ok"), **kw
    )


def test_signing_a_version_not_due_is_refused(personas: dict[str, Any]) -> None:
    package = _approved()
    with pytest.raises(SignOffNotAllowed) as exc:
        _sign(personas["mlead"], package, "ml-lead")
    assert exc.value.code == "not_due"


def test_only_compliance_or_staff_start_a_revalidation(personas: dict[str, Any]) -> None:
    package = _approved()
    for name in ("mlead", "viewer", "nobody"):
        with pytest.raises(PermissionDenied):
            revalidation_start(user=personas[name], package_id=package.pk)
    started = revalidation_start(user=personas["comp"], package_id=package.pk)
    assert started.outcome == Revalidation.Outcome.IN_PROGRESS
    assert revalidation_start(user=personas["staff"], package_id=package.pk) == started  # one open at a time
    assert AuditLogEntry.objects.filter(action="revalidation.started").count() == 1


def test_a_pending_version_cannot_be_revalidated(personas: dict[str, Any]) -> None:
    with pytest.raises(SignOffNotAllowed) as exc:
        revalidation_start(user=personas["comp"], package_id=ModelPackageFactory().pk)
    assert exc.value.code == "not_approved"


def test_first_signoff_on_a_due_version_opens_the_revalidation(personas: dict[str, Any]) -> None:
    package = _approved()
    later = timezone.now() + dt.timedelta(days=400)
    PackageObservationFactory(package=package, observed_at=timezone.now())
    assert revalidation_clocks([package], now=later)[package.pk].is_due
    result = _sign(personas["mlead"], package, "ml-lead", now=later)
    assert result.revalidation.outcome == Revalidation.Outcome.IN_PROGRESS
    assert result.revalidation.due_at is not None and result.push is None


@pytest.mark.parametrize(
    ("second", "role", "code"),
    [
        ("mlead", "ml-lead", "already_signed"),
        ("registrant", "fairness", "registrant"),
        ("viewer", "fairness", "role_not_held"),
        ("fair", "auditor", "role_not_required"),
    ],
)
def test_separation_of_duties_as_for_first_signoffs(
    personas: dict[str, Any], second: str, role: str, code: str
) -> None:
    package = _approved(created_by=user_context("registrant"))
    revalidation_start(user=personas["comp"], package_id=package.pk)
    _sign(personas["mlead"], package, "ml-lead")
    with pytest.raises(SignOffNotAllowed) as exc:
        _sign(personas[second], package, role)
    assert exc.value.code == code


def test_one_role_per_person(personas: dict[str, Any]) -> None:
    from tests.personas import make_user

    both = make_user("both", "ml-lead", "fairness")
    package = _approved()
    revalidation_start(user=personas["comp"], package_id=package.pk)
    _sign(both, package, "ml-lead")
    with pytest.raises(SignOffNotAllowed) as exc:
        _sign(both, package, "fairness")
    assert exc.value.code == "separation_of_duties"


def test_a_content_change_makes_revalidation_signoffs_stale(personas: dict[str, Any]) -> None:
    package = _approved()
    revalidation_start(user=personas["comp"], package_id=package.pk)
    first = _sign(personas["mlead"], package, "ml-lead").signoff
    package.description = "retrained on new data"
    package.save()
    _sign(personas["fair"], package, "fairness")
    _sign(personas["comp"], package, "compliance")
    first.refresh_from_db()
    assert first.stale_at is not None
    revalidation = Revalidation.objects.get()
    assert revalidation.outcome == Revalidation.Outcome.IN_PROGRESS  # ml-lead must sign again
    _sign(personas["mlead"], package, "ml-lead")  # re-signing a stale role is allowed
    revalidation.refresh_from_db()
    assert revalidation.outcome == Revalidation.Outcome.PASSED


def test_a_rejection_fails_the_revalidation(personas: dict[str, Any]) -> None:
    package = _approved()
    revalidation_start(user=personas["comp"], package_id=package.pk)
    with pytest.raises(SignOffNotAllowed) as exc:
        _sign(personas["fair"], package, "fairness", decision="reject", comment="")
    assert exc.value.code == "comment_required"
    result = _sign(personas["fair"], package, "fairness", decision="reject", comment="drift on age bands")
    assert result.revalidation.outcome == Revalidation.Outcome.FAILED and result.push is None
    assert AuditLogEntry.objects.filter(action="revalidation.failed").exists()
    package.refresh_from_db()
    assert package.approval_status == ApprovalStatus.APPROVED  # revoking is compliance's separate decision
    assert not PushOutbox.objects.filter(package=package).exists()


def test_last_revalidated_is_outside_the_fingerprint() -> None:
    package = _approved()
    before, _ = package_fingerprint(package)
    package.customer_metadata = {**package.customer_metadata, LAST_REVALIDATED_KEY: "2026-12-05"}
    assert package_fingerprint(package)[0] == before


def test_completion_pushes_last_revalidated_without_changing_the_status(
    registry: Registry, personas: dict[str, Any], outbox: Outbox
) -> None:
    package = registry.package("approved")
    revalidation_start(user=personas["comp"], package_id=package.pk)
    with outbox.capture(execute=True):
        for name, role in ROLES:
            result = _sign(personas[name], package, role)
    assert result.revalidation.outcome == Revalidation.Outcome.PASSED
    push = result.push
    assert push is not None and push.kind == PushOutbox.Kind.FLAGS
    assert push.expected_status == ApprovalStatus.APPROVED and push.target_status == ""
    today = timezone.now().date().isoformat()
    assert push.flags == {LAST_REVALIDATED_KEY: today}
    assert AuditLogEntry.objects.filter(action="revalidation.passed").count() == 1
    fingerprint_before, _ = package_fingerprint(package)

    outbox.drain()
    push.refresh_from_db()
    assert push.state == PushOutbox.State.SENT, push.last_error
    described = registry.describe("approved")
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"][LAST_REVALIDATED_KEY] == today
    mirrored = registry.package("approved")  # the refresh after the push brought it into the mirror
    assert mirrored.customer_metadata[LAST_REVALIDATED_KEY] == today
    assert package_fingerprint(mirrored)[0] == fingerprint_before  # nothing reviewed went stale
    assert not RevalidationSignOff.objects.filter(stale_at__isnull=False).exists()
    assert revalidation_clocks([mirrored])[mirrored.pk].state == "current"


def test_an_open_blocking_finding_blocks_a_passing_revalidation(personas: dict[str, Any]) -> None:
    """Revalidation reviews the current evidence, findings included (issue 15)."""
    from registry_app.review.findings import finding_close, finding_raise

    package = _approved()
    revalidation_start(user=personas["comp"], package_id=package.pk)
    finding = finding_raise(
        user=personas["fair"],
        package_id=package.pk,
        title="PSI drift on age",
        severity="high",
        description="d",
        owner_email="ml-team@example.com",
    )
    with pytest.raises(SignOffNotAllowed) as exc:
        _sign(personas["mlead"], package, "ml-lead")
    assert exc.value.code == "finding_blocked" and f"F-{finding.pk}" in exc.value.message
    assert _sign(personas["mlead"], package, "ml-lead", decision="reject", comment="drift").revalidation.outcome == (
        Revalidation.Outcome.FAILED
    )  # a rejection is never blocked
    finding_close(
        user=personas["comp"], finding_id=finding.pk, comment="retrained", evidence_url="https://example.com/run/1"
    )
    revalidation_start(user=personas["comp"], package_id=package.pk)
    assert _sign(personas["mlead"], package, "ml-lead").revalidation.outcome == Revalidation.Outcome.IN_PROGRESS


def test_a_revalidation_records_the_policy_version_it_ran_under(personas: dict[str, Any]) -> None:
    from registry_app.review.policy_versions import version_in_force

    package = _approved()
    started = revalidation_start(user=personas["comp"], package_id=package.pk)
    version = version_in_force(package.group)
    assert version is not None and started.policy_version == version and version.label == "high v1"
