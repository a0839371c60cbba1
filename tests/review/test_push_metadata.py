"""Issue 9 item 2: the push never echoes metadata keys the dashboard does not own, and withdraws
role flags whose sign-offs went stale or whose approval was revoked.

On the AWS-faithful fake UpdateModelPackage merges ``CustomerMetadataProperties`` and honours
``CustomerMetadataPropertiesToRemove``, as AWS does.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.sagemaker.models import sagemaker_backends

from registry_app.aws.sagemaker import RegistryClient
from registry_app.models import ModelPackage, PushOutbox, SignOff
from registry_app.review.decisions import package_revoke
from registry_app.review.signoffs import signoff_create
from tests.aws_helpers import REGION
from tests.review.conftest import Outbox, Registry

pytestmark = pytest.mark.django_db


def _backend_package(arn: str) -> Any:
    backend = sagemaker_backends["123456789012"][REGION]
    return next(p for p in backend.model_packages.values() if p.arn == arn)


def _sign(outbox: Outbox, user: Any, package: ModelPackage, role: str) -> Any:
    with outbox.capture(execute=True):
        return signoff_create(user=user, package_id=package.pk, role=role, decision="approve", comment="ok")


def test_a_key_changed_by_a_pipeline_during_the_push_is_not_restored(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox, monkeypatch
) -> None:
    """Between the push's describe and its update a pipeline changes ``owner``: the update must not
    put the old value back (the old push echoed the map it had described)."""
    original = RegistryClient.update_package

    def pipeline_writes_first(self: RegistryClient, **params: Any) -> dict[str, Any]:
        _backend_package(registry.arns["pending"]).customer_metadata_properties["owner"] = "team-fraud"
        return original(self, **params)

    monkeypatch.setattr(RegistryClient, "update_package", pipeline_writes_first)
    _sign(outbox, personas["fair"], registry.package("pending"), "fairness")
    outbox.drain()
    metadata = registry.describe("pending")["CustomerMetadataProperties"]
    assert metadata["owner"] == "team-fraud"
    # ``owner`` is reviewed content: the mirror's refresh saw it change, the fairness sign-off went
    # stale, and the flag it had written was withdrawn again.
    assert "FairnessApproved" not in metadata
    assert SignOff.objects.get(role="fairness").stale_at is not None


def test_flags_of_stale_signoffs_are_withdrawn(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox
) -> None:
    package = registry.package("pending")
    _sign(outbox, personas["fair"], package, "fairness")
    outbox.drain()
    assert registry.describe("pending")["CustomerMetadataProperties"]["FairnessApproved"] == "true"

    # The image changes in the registry; the sync sees it and the fairness sign-off goes stale.
    _backend_package(registry.arns["pending"]).inference_specification["Containers"][0]["Image"] = "repo/new:2"
    with outbox.capture(execute=True):
        registry.sync()
    outbox.drain()

    withdrawal = PushOutbox.objects.get(package=package, flags={"FairnessApproved": None})
    assert withdrawal.state == PushOutbox.State.SENT
    metadata = registry.describe("pending")["CustomerMetadataProperties"]
    assert "FairnessApproved" not in metadata
    assert metadata["owner"] == "team-risk"  # nothing else touched


def test_revocation_withdraws_the_role_flags(  # type: ignore[no-untyped-def]
    registry: Registry, personas: dict[str, Any], outbox: Outbox
) -> None:
    package = registry.package("pending")
    for user, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        _sign(outbox, personas[user], package, role)
    outbox.drain()
    approved = registry.describe("pending")
    assert approved["ModelApprovalStatus"] == "Approved"
    assert {"MLEngineerApproved", "FairnessApproved", "ComplianceApproved"} <= set(
        approved["CustomerMetadataProperties"]
    )

    with outbox.capture(execute=True):
        package_revoke(user=personas["comp"], package_id=package.pk, justification="Data leak found")
    outbox.drain()

    revoked = registry.describe("pending")
    assert revoked["ModelApprovalStatus"] == "Rejected"
    assert revoked["CustomerMetadataProperties"] == {"GitCommitSha": "0123abc", "owner": "team-risk"}
