"""Issue 9, item 1: a push never approves content that changed in the registry after review.

``UpdateModelPackage`` can change the inference specification (the container image), the card,
``ModelMetrics`` or custom metadata without touching the approval status. moto ignores such
updates, so the change is made in moto's backend directly, as another client would have made it
on AWS. On the old code the decision push re-read only the status and approved the swapped image.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.sagemaker.models import sagemaker_backends

from registry_app.models import AuditLogEntry, ModelPackage, PushOutbox, SignOff
from registry_app.review.signoffs import signoff_create
from tests.aws_helpers import REGION
from tests.review.conftest import Outbox, Registry, UpdateCounter

pytestmark = pytest.mark.django_db


def _swap_image(arn: str, image: str) -> None:
    """Change the package's container image in the registry, outside the dashboard."""
    backend = sagemaker_backends["123456789012"][REGION]
    package = next(p for p in backend.model_packages.values() if p.arn == arn)
    package.inference_specification["Containers"][0]["Image"] = image


def _sign(outbox: Outbox, user: Any, package: ModelPackage, role: str) -> Any:
    with outbox.capture(execute=True):
        return signoff_create(user=user, package_id=package.pk, role=role, decision="approve", comment="ok")


def test_decision_push_refuses_a_swapped_image(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox, updates: UpdateCounter, notifications
) -> None:
    package = registry.package("pending")
    _sign(outbox, personas["mlead"], package, "ml-lead")
    _sign(outbox, personas["fair"], package, "fairness")
    outbox.drain()
    sent_before = updates.count
    last = _sign(outbox, personas["comp"], package, "compliance")
    assert last.result.decision == "Approved"

    _swap_image(registry.arns["pending"], "123456789012.dkr.ecr.eu-west-1.amazonaws.com/evil:latest")
    outbox.drain()

    decision_push = PushOutbox.objects.get(decision=last.decision)
    assert decision_push.state == PushOutbox.State.CONFLICT
    assert decision_push.conflict_detail["reason"] == "content_changed"
    assert decision_push.conflict_detail["changed"] == ["inference_specification"]
    assert "reviewed content changed" in decision_push.last_error
    # Nothing approving was written: the registry still waits, the flags push may have gone first.
    assert registry.describe("pending")["ModelApprovalStatus"] == "PendingManualApproval"
    assert all(call.get("model_approval_status") != "Approved" for call in updates.calls[sent_before:])
    # Every sign-off went stale (the reviewers must look at the new image), and that is audited.
    assert SignOff.objects.filter(package=package, stale_at__isnull=True).count() == 0
    assert AuditLogEntry.objects.filter(action="signoffs.marked_stale").exists()
    # Both approving pushes of the last sign-off (its role flag, then the decision) were refused.
    refused = PushOutbox.objects.filter(package=package, state=PushOutbox.State.CONFLICT)
    assert sorted(refused.values_list("kind", flat=True)) == ["decision", "flags"]
    assert {c.args[0] for c in notifications.conflict.call_args_list} == set(refused.values_list("pk", flat=True))
    # The mirror now shows the new image.
    image = ModelPackage.objects.get(pk=package.pk).inference_specification["Containers"][0]["Image"]
    assert image.endswith("evil:latest")


def test_unchanged_content_is_approved(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox, updates: UpdateCounter
) -> None:
    package = registry.package("pending")
    for user, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        _sign(outbox, personas[user], package, role)
    outbox.drain()
    assert registry.describe("pending")["ModelApprovalStatus"] == "Approved"
    assert not PushOutbox.objects.filter(state=PushOutbox.State.CONFLICT).exists()
