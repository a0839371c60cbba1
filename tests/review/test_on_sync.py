"""Reviewed content changes (seen by the sync) make sign-offs stale; review requests from the hook."""

from __future__ import annotations

import json
from typing import Any

import pytest

from registry_app.mirror.reconcile import apply_package_record
from registry_app.models import ModelPackage, SignOff
from registry_app.review.on_sync import card_observed
from registry_app.review.panel import review_state
from registry_app.review.signoffs import signoff_create
from registry_app.review.state import package_fingerprint
from tests import aws_helpers as h
from tests.factories import ModelPackageFactory
from tests.review.conftest import Outbox, Registry

pytestmark = pytest.mark.django_db


def sign(outbox: Outbox, user: Any, package: ModelPackage, role: str) -> Any:
    with outbox.capture(execute=True):
        return signoff_create(user=user, package_id=package.pk, role=role, decision="approve", comment="")


def assert_stale_and_resignable(outbox: Outbox, user: Any, package: ModelPackage, role: str, first: SignOff) -> None:
    package = ModelPackage.objects.select_related("group", "model_card").get(pk=package.pk)
    state = review_state(package, user)
    (old,) = [s for s in state.signoffs if s.pk == first.pk]
    assert old.is_stale
    progress = next(r for r in state.result.roles if r.role == role)
    assert progress.approvals == [] and len(progress.stale) == 1  # does not count
    assert role in state.signable_roles  # the same user may sign the same role again
    again = sign(outbox, user, package, role)
    progress = next(r for r in again.result.roles if r.role == role)
    assert [s.user_id for s in progress.approvals] == [user.pk]
    assert SignOff.objects.get(pk=first.pk).stale_at is not None


def test_metadata_change_seen_by_the_sync(registry: Registry, personas: dict[str, Any], outbox: Outbox) -> None:
    package = registry.package("pending")
    first = sign(outbox, personas["comp"], package, "compliance").signoff
    outbox.drain()  # the flag write itself must not make the sign-off stale
    registry.sync()
    assert SignOff.objects.get(pk=first.pk).stale_at is None
    current = registry.describe("pending")
    registry.sm.update_model_package(
        ModelPackageArn=registry.arns["pending"],
        ModelApprovalStatus=current["ModelApprovalStatus"],
        CustomerMetadataProperties={**current["CustomerMetadataProperties"], "GitCommitSha": "ffff999"},
    )
    registry.sync()
    assert SignOff.objects.get(pk=first.pk).stale_at is not None
    assert_stale_and_resignable(outbox, personas["comp"], package, "compliance", first)


def test_report_change_seen_by_the_sync(registry: Registry, personas: dict[str, Any], outbox: Outbox) -> None:
    package = registry.package("pending")
    first = sign(outbox, personas["fair"], package, "fairness").signoff
    record = registry.describe("pending")
    record["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] = "s3://ml-artifacts/credit/1/evaluation-v2.json"
    apply_package_record(registry.source, json.loads(json.dumps(record, default=str)))
    assert SignOff.objects.get(pk=first.pk).stale_at is not None
    assert_stale_and_resignable(outbox, personas["fair"], package, "fairness", first)


def test_embedded_card_change_seen_by_the_sync(registry: Registry, personas: dict[str, Any], outbox: Outbox) -> None:
    package = registry.package("pending")
    record = json.loads(json.dumps(registry.describe("pending"), default=str))
    record["ModelCard"] = {
        "ModelCardContent": json.dumps({"intended_uses": {"risk_rating": "Low"}}),
        "ModelCardStatus": "Draft",
    }
    apply_package_record(registry.source, record)
    first = sign(outbox, personas["mlead"], package, "ml-lead").signoff
    record["ModelCard"]["ModelCardContent"] = json.dumps({"intended_uses": {"risk_rating": "High"}})
    apply_package_record(registry.source, record)
    assert SignOff.objects.get(pk=first.pk).stale_at is not None
    assert_stale_and_resignable(outbox, personas["mlead"], package, "ml-lead", first)


def test_standalone_card_change_seen_by_the_sync(registry: Registry, personas: dict[str, Any], outbox: Outbox) -> None:
    """The sync's card path calls ``card_observed``: the linked package's sign-offs become stale."""
    registry.sm.create_model_card(
        ModelCardName="credit-risk",
        Content=json.dumps({"model_overview": {"model_description": "v1"}}),
        ModelCardStatus="Draft",
    )
    registry.sync()
    package = registry.package("pending")
    assert package.model_card is not None
    first = sign(outbox, personas["comp"], package, "compliance").signoff
    registry.sm.update_model_card(
        ModelCardName="credit-risk", Content=json.dumps({"model_overview": {"model_description": "v2, retrained"}})
    )
    registry.sync()
    card = ModelPackage.objects.get(pk=package.pk).model_card
    assert card is not None and card.version == 2
    assert SignOff.objects.get(pk=first.pk).stale_at is not None
    assert card_observed(card) == 0  # nothing left to mark
    assert_stale_and_resignable(outbox, personas["comp"], package, "compliance", first)


def test_fingerprint_ignores_what_the_dashboard_writes(db: None) -> None:
    package = ModelPackageFactory()
    before, detail = package_fingerprint(package)
    package.customer_metadata = {**package.customer_metadata, "MLEngineerApproved": "true", "FairnessApproved": "true"}
    package.approval_status = "Approved"
    package.approval_description = "Approved via governance dashboard"
    package.last_modified_at = package.last_modified_at.replace(year=2031)
    package.last_modified_by = {"IamIdentity": {"Arn": "arn:aws:sts::1:assumed-role/Gov/dash"}}
    assert package_fingerprint(package)[0] == before
    assert set(detail) >= {"card", "reports", "description", "inference_specification", "customer_metadata"}
    package.customer_metadata = {**package.customer_metadata, "GitCommitSha": "other"}
    assert package_fingerprint(package)[0] != before


def test_stale_signoff_is_not_revived_when_content_changes_back(
    registry: Registry, personas: dict[str, Any], outbox: Outbox
) -> None:
    package = registry.package("pending")
    sign(outbox, personas["fair"], package, "fairness")
    record = json.loads(json.dumps(registry.describe("pending"), default=str))
    original = dict(record)
    record["ModelPackageDescription"] = "changed"
    apply_package_record(registry.source, record)
    apply_package_record(registry.source, original)
    state = review_state(registry.package("pending"), personas["fair"])
    assert state.signoffs[0].is_stale
    assert state.result.roles[1].approvals == []


def test_review_requested_when_first_seen_pending(registry: Registry, notifications: Any) -> None:
    pending = {registry.package(k).pk for k in ("pending", "pending2")}
    assert {c.args[0] for c in notifications.review_requested.call_args_list} == pending
    notifications.review_requested.reset_mock()
    registry.sync()  # nothing new
    notifications.review_requested.assert_not_called()
    h.set_status(registry.sm, registry.arns["approved"], "PendingManualApproval", "back to review")
    registry.sync()
    notifications.review_requested.assert_called_once_with(registry.package("approved").pk)


def test_a_failing_hook_never_breaks_the_sync(registry: Registry, personas: dict[str, Any], outbox: Outbox) -> None:
    from unittest import mock

    package = registry.package("pending")
    sign(outbox, personas["fair"], package, "fairness")
    record = json.loads(json.dumps(registry.describe("pending"), default=str))
    record["ModelPackageDescription"] = "changed again"
    with mock.patch("registry_app.review.staleness.signoffs_mark_stale", side_effect=RuntimeError("boom")):
        applied = apply_package_record(registry.source, record)
    assert applied.description == "changed again"
    # The evaluation still judges by fingerprint: the sign-off no longer counts.
    state = review_state(registry.package("pending"), personas["fair"])
    assert state.signoffs[0].is_stale and state.signoffs[0].stale_at is None
