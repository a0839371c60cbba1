"""End to end against moto: sign-offs, rejection, revocation and archiving reach the registry."""

from __future__ import annotations

from typing import Any

import pytest

from registry_app.models import Decision, ModelPackage, PushOutbox, SignOff
from registry_app.review.decisions import group_archive, package_revoke
from registry_app.review.policy import SignOffNotAllowed
from registry_app.review.signoffs import signoff_create
from tests.review.conftest import Outbox, Registry, UpdateCounter

pytestmark = pytest.mark.django_db

FLAGS = ("MLEngineerApproved", "FairnessApproved", "ComplianceApproved")


def sign(
    outbox: Outbox, user: Any, package: ModelPackage, role: str, decision: str = "approve", comment: str = ""
) -> Any:
    with outbox.capture(execute=True):
        return signoff_create(user=user, package_id=package.pk, role=role, decision=decision, comment=comment)


def test_three_roles_approve_and_the_registry_shows_it(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox, updates: UpdateCounter, notifications
) -> None:
    package = registry.package("pending")
    first = sign(outbox, personas["mlead"], package, "ml-lead", comment="Metrics fine")
    assert first.decision is None and first.result.decision == "Pending"
    assert [p.kind for p in first.pushes] == ["flags"]
    assert first.pushes[0].flags == {"MLEngineerApproved": "true"}
    outbox.drain()
    # The flag is written at once; status and other metadata untouched.
    described = registry.describe("pending")
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["CustomerMetadataProperties"] == {
        "GitCommitSha": "0123abc",
        "owner": "team-risk",
        "MLEngineerApproved": "true",
    }
    # The mirror took the flag without making the first sign-off stale.
    assert ModelPackage.objects.get(pk=package.pk).customer_metadata["MLEngineerApproved"] == "true"
    assert SignOff.objects.get(pk=first.signoff.pk).stale_at is None

    sign(outbox, personas["fair"], package, "fairness")
    last = sign(outbox, personas["comp"], package, "compliance")
    assert last.result.decision == "Approved"
    assert last.decision is not None and last.decision.kind == Decision.Kind.POLICY
    assert [p.kind for p in last.pushes] == ["flags", "decision"]
    notifications.decided.assert_called_once_with(last.decision.pk)
    outbox.drain()

    described = registry.describe("pending")
    assert described["ModelApprovalStatus"] == "Approved"
    description = described["ApprovalDescription"]
    assert description.startswith("Approved via governance dashboard")
    for text in ("ml-lead mlead", "fairness fair", "compliance comp"):
        assert text in description
    metadata = described["CustomerMetadataProperties"]
    assert all(metadata[flag] == "true" for flag in FLAGS)
    assert metadata["GitCommitSha"] == "0123abc" and metadata["owner"] == "team-risk"
    # The mirror shows Approved without waiting for a sync.
    mirrored = ModelPackage.objects.get(pk=package.pk)
    assert mirrored.approval_status == "Approved"
    assert mirrored.approval_description == description
    assert set(PushOutbox.objects.filter(package=package).values_list("state", flat=True)) == {"sent"}
    assert updates.count == 4  # three flags, one decision: each exactly once


def test_a_flags_push_sends_only_its_flag_with_the_client_token(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox, monkeypatch
) -> None:
    """Issue 9 item 2: AWS merges CustomerMetadataProperties and keeps what an update leaves out, so
    a flags push names only the flag it owns: no status, no description, no echo of other keys
    (the old push echoed the whole map and the status, which moto needed and AWS punishes)."""
    from registry_app.aws.sagemaker import RegistryClient

    sent: list[dict[str, Any]] = []
    original = RegistryClient.update_package

    def spy(self: RegistryClient, **params: Any) -> dict[str, Any]:
        sent.append(params)
        return original(self, **params)

    monkeypatch.setattr(RegistryClient, "update_package", spy)
    package = registry.package("pending")
    result = sign(outbox, personas["fair"], package, "fairness")
    outbox.drain()
    (params,) = sent
    assert params["ClientToken"] == str(result.pushes[0].pk) and len(params["ClientToken"]) <= 36
    assert set(params) == {"ModelPackageArn", "CustomerMetadataProperties", "ClientToken"}
    assert params["CustomerMetadataProperties"] == {"FairnessApproved": "true"}
    # The registry merged it: the pipeline's keys are still there.
    assert registry.describe("pending")["CustomerMetadataProperties"] == {
        "GitCommitSha": "0123abc",
        "owner": "team-risk",
        "FairnessApproved": "true",
    }


def test_rejection_needs_a_comment_and_rejects(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox, notifications
) -> None:
    package = registry.package("pending")
    with pytest.raises(SignOffNotAllowed) as exc:
        sign(outbox, personas["fair"], package, "fairness", "reject", comment="   ")
    assert exc.value.code == "comment_required"
    assert "comment" in exc.value.message
    result = sign(outbox, personas["fair"], package, "fairness", "reject", comment="DPPL for age is far too high")
    assert result.result.decision == "Rejected"
    assert result.decision is not None and result.decision.kind == Decision.Kind.REJECTION
    assert [p.kind for p in result.pushes] == ["decision"]
    outbox.drain()
    described = registry.describe("pending")
    assert described["ModelApprovalStatus"] == "Rejected"
    assert "fairness fair: DPPL for age is far too high" in described["ApprovalDescription"]
    assert described["CustomerMetadataProperties"]["owner"] == "team-risk"
    assert ModelPackage.objects.get(pk=package.pk).approval_status == "Rejected"
    # Decided: nobody signs any more.
    with pytest.raises(SignOffNotAllowed) as exc:
        sign(outbox, personas["mlead"], package, "ml-lead")
    assert exc.value.code == "already_decided"


def test_revocation_moves_approved_to_rejected(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox, notifications
) -> None:
    package = registry.package("approved")
    with outbox.capture(execute=True):
        decision = package_revoke(
            user=personas["comp"], package_id=package.pk, justification="Training data leak found"
        )
    assert decision.kind == Decision.Kind.REVOCATION and decision.status == "Rejected"
    push = decision.pushes.get()
    assert push.expected_status == "Approved"
    notifications.decided.assert_called_once_with(decision.pk)
    outbox.drain()
    described = registry.describe("approved")
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"] == (
        "Approval revoked via governance dashboard by comp: Training data leak found"
    )
    assert ModelPackage.objects.get(pk=package.pk).approval_status == "Rejected"
    with pytest.raises(SignOffNotAllowed) as exc:
        package_revoke(user=personas["comp"], package_id=package.pk, justification="again")
    assert exc.value.code == "not_approved"


def test_archive_rejects_every_live_version(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox, updates: UpdateCounter
) -> None:
    from tests import aws_helpers as h

    h.set_status(registry.sm, registry.arns["pending2"], "Rejected", "not good enough")
    registry.sync()
    updates.calls.clear()
    group = registry.package("pending").group
    with outbox.capture(execute=True):
        decisions = group_archive(user=personas["comp"], group_id=group.pk, justification="Product retired")
    assert sorted(d.package.version for d in decisions) == [1, 2]  # the rejected v3 is left alone
    assert {d.kind for d in decisions} == {Decision.Kind.ARCHIVE}
    outbox.drain()
    for key in ("pending", "approved", "pending2"):
        assert registry.describe(key)["ModelApprovalStatus"] == "Rejected"
    assert registry.describe("pending")["ApprovalDescription"] == (
        "Archived via governance dashboard by comp: Product retired"
    )
    assert registry.describe("pending2")["ApprovalDescription"] == "not good enough"
    assert updates.count == 2
    assert ModelPackage.objects.filter(group=group, approval_status="Rejected").count() == 3
    # Archiving again finds nothing left to do.
    assert group_archive(user=personas["comp"], group_id=group.pk, justification="Product retired") == []
