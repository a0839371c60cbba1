"""/as-of/: a scripted history (deploy v1, approve v2, update the endpoint to v2, roll back to v1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from registry_app.audit.as_of import VariantAt, as_of
from registry_app.audit.as_of_evidence import Fact
from registry_app.audit.as_of_status import rollback_candidate
from registry_app.models import ModelPackage
from registry_app.models.registry import ApprovalStatus
from tests.audit.builders import at, cloudtrail, decision, deployment, observe, push, signoff, status_call
from tests.audit.conftest import make_user
from tests.factories import EndpointFactory, ModelPackageFactory, ModelPackageGroupFactory, RegistrySourceFactory

pytestmark = pytest.mark.django_db

ENDPOINT = "credit-prod"


@dataclass
class History:
    v1: ModelPackage
    v2: ModelPackage
    created_endpoint: Any
    v1_approval: Any
    v2_approval: Any
    v2_rejection: Any
    signoffs_v2: list[Any]


@pytest.fixture
def history(db: None) -> History:
    source = RegistrySourceFactory(name="prod-eu")
    group = ModelPackageGroupFactory(source=source, name="credit-risk")
    v1 = ModelPackageFactory(group=group, version=1, approval_status=ApprovalStatus.APPROVED)
    v2 = ModelPackageFactory(group=group, version=2, approval_status=ApprovalStatus.REJECTED)
    carol, connie, farid = (
        make_user("carol", "ml-lead"),
        make_user("connie", "compliance"),
        make_user("farid", "fairness"),
    )
    # v1: registered, signed off and approved two days before the endpoint exists
    observe(v1, at(-48), {"approval_status": [None, "PendingManualApproval"]}, change="created")
    signoff(v1, carol, "ml-lead", at(-41))
    signoff(v1, connie, "compliance", at(-40.5))
    made = decision(v1, "Approved", at(-40.1), connie)
    push(v1, "Approved", at(-40.1), sent=at(-40), decision_row=made, acting="connie")
    v1_approval = status_call(v1, "Approved", at(-40), actor="connie")
    observe(v1, at(-40, minutes=1), {"approval_status": ["PendingManualApproval", "Approved"]})
    # deploy v1 at T1
    created = cloudtrail("CreateEndpoint", at(0), endpoint_name=ENDPOINT, actor="deployer")
    EndpointFactory(source=source, name=ENDPOINT, created_at=at(0))
    deployment(ENDPOINT, v1, at(0), at(4), evidence={"events": {"deploy": created.event_id}})
    # v2: registered, two sign-offs, approved
    observe(v2, at(1), {"approval_status": [None, "PendingManualApproval"]}, change="created")
    signoffs_v2 = [signoff(v2, carol, "ml-lead", at(2)), signoff(v2, farid, "fairness", at(2.5))]
    v2_approval = status_call(v2, "Approved", at(3), actor="alice")
    observe(v2, at(3, minutes=1), {"approval_status": ["PendingManualApproval", "Approved"]})
    # update the endpoint to v2 at T3, roll back to v1 at T6, reject v2 at T7
    update = cloudtrail("UpdateEndpoint", at(4), endpoint_name=ENDPOINT, actor="deployer")
    deployment(ENDPOINT, v2, at(4), at(6), evidence={"events": {"deploy": update.event_id}})
    rollback = cloudtrail("UpdateEndpoint", at(6), endpoint_name=ENDPOINT, actor="deployer")
    deployment(ENDPOINT, v1, at(6), None, evidence={"events": {"deploy": rollback.event_id}, "ended_by": ""})
    v2_rejection = status_call(v2, "Rejected", at(7), actor="connie")
    observe(v2, at(7, minutes=1), {"approval_status": ["Approved", "Rejected"]})
    # v1's training data version was corrected in the registry after the rollback
    old_meta = dict(v1.customer_metadata, TrainingDataS3VersionId="v1-original")
    observe(v1, at(6.5), {"customer_metadata": [old_meta, v1.customer_metadata]})
    return History(v1, v2, created, v1_approval, v2_approval, v2_rejection, signoffs_v2)


def _fact(variant: VariantAt, name: str) -> Fact:
    return next(f for f in variant.package.facts if f.name == name)


def _refs(fact: Fact) -> set[str]:
    return {e.ref for e in fact.evidence}


def test_before_any_deployment_nothing_was_deployed(history: History) -> None:
    answer = as_of(ENDPOINT, at(-1))
    assert answer.nothing_deployed and not answer.variants and not answer.missing
    assert answer.summary.startswith("Nothing was deployed")
    assert {e.ref for e in answer.summary_evidence} == {f"cloudtrail:{history.created_endpoint.event_id}"}


def test_while_v1_serves(history: History) -> None:
    answer = as_of(ENDPOINT, at(2))
    assert not answer.nothing_deployed
    (variant,) = answer.variants
    assert variant.package.package == history.v1
    assert variant.deployment.weight == 1.0
    assert f"cloudtrail:{history.created_endpoint.event_id}" in {e.ref for e in variant.evidence}
    status = _fact(variant, "approval status")
    assert status.value == "Approved"
    assert f"cloudtrail:{history.v1_approval.event_id}" in _refs(status)
    assert any(ref.startswith("observation:") for ref in _refs(status))
    approval = _fact(variant, "approval")
    assert "through the governance dashboard" in approval.value
    assert any(ref.startswith("push:") for ref in _refs(approval))
    approvers = {(s.signoff.user.username, s.signoff.role) for s in variant.package.approvers}
    assert approvers == {("carol", "ml-lead"), ("connie", "compliance")}
    # the value at that time, not today's: the correction at T6.5 came later
    data = _fact(variant, "training data version")
    assert data.value == "v1-original"
    assert any(ref.startswith("observation:") for ref in _refs(data))
    assert _fact(variant, "commit").value.startswith("9fceb02d0ae598e95dc970b74767f19372d61af8")
    assert _fact(variant, "image digest").value == "sha256:" + "0f1e2d3c" * 8
    assert variant.rollback is not None and variant.rollback.package is None  # nothing before v1


def test_while_v2_serves(history: History) -> None:
    answer = as_of(ENDPOINT, at(5))
    (variant,) = answer.variants
    assert variant.package.package == history.v2
    status = _fact(variant, "approval status")
    assert status.value == "Approved"  # today it is Rejected
    assert f"cloudtrail:{history.v2_approval.event_id}" in _refs(status)
    approval = _fact(variant, "approval")
    # the group was first mirrored today, after this approval: outside the dashboard, before governance
    assert approval.value == (
        "Approved at 2025-03-10T12:00:00+00:00 outside the dashboard, before governance, by alice"
        " (made before the dashboard first mirrored this group, so no review could have applied)"
    )
    assert approval.link.endswith(f"#cloudtrail-{history.v2_approval.pk}")
    # the mirror first saw v2 today; CloudTrail reaches back and shows no content change since
    coverage = _fact(variant, "content before the mirror's first sighting")
    assert coverage.value.startswith("unchanged") and not coverage.missing
    assert not answer.missing
    assert {s.signoff.pk for s in variant.package.signoffs} == {s.pk for s in history.signoffs_v2}
    assert variant.rollback is not None and variant.rollback.package == history.v1
    assert f"cloudtrail:{history.v1_approval.event_id}" in _refs(variant.rollback.status_fact)  # type: ignore[arg-type]


def test_after_the_rollback(history: History) -> None:
    answer = as_of(ENDPOINT, at(6.75))
    (variant,) = answer.variants
    assert variant.package.package == history.v1
    assert variant.deployment.ended_at is None
    assert _fact(variant, "training data version").value == history.v1.customer_metadata["TrainingDataS3VersionId"]
    later = as_of(ENDPOINT, at(8))
    assert later.variants[0].package.package == history.v1


def test_status_history_of_a_package_not_serving(history: History) -> None:
    candidate = rollback_candidate(
        ModelPackageFactory(group=history.v1.group, version=3, approval_status="PendingManualApproval"), at(8)
    )
    assert candidate.package == history.v1  # v2 was Rejected by then
    earlier = rollback_candidate(ModelPackage.objects.get(group=history.v1.group, version=3), at(5))
    assert earlier.package == history.v2  # ...but Approved at T5


def test_incomplete_evidence_is_stated(db: None) -> None:
    package = ModelPackageFactory(customer_metadata={"owner": "team-risk"}, metadata_properties={})
    deployment("legacy-prod", package, at(0))
    before = as_of("legacy-prod", at(-1))
    assert not before.nothing_deployed
    assert before.missing == [
        "No deployment known before 2025-03-10T09:00:00+00:00: the endpoint's CloudTrail history starts then."
    ]
    during = as_of("legacy-prod", at(1))
    (variant,) = during.variants
    assert _fact(variant, "training data version").missing
    assert _fact(variant, "commit").missing
    assert any("training data version" in line for line in during.missing)
    unknown = as_of("never-heard-of", at(1))
    assert not unknown.nothing_deployed and unknown.missing


def test_page_and_exports(history: History, compliance_client: Client, viewer_client: Client) -> None:
    url = reverse("registry:as_of")
    page = viewer_client.get(url, {"endpoint": ENDPOINT, "at": "2025-03-10T14:00:00Z"})
    text = page.content.decode()
    assert page.status_code == 200
    assert "credit-risk v2" in text or "credit-risk/2" in text
    assert "Rollback candidate" in text and f"cloudtrail:{history.v2_approval.event_id}" in text
    assert (
        viewer_client.get(url, {"endpoint": ENDPOINT, "at": "2025-03-10T14:00:00Z", "format": "json"}).status_code
        == 403
    )
    response = compliance_client.get(url, {"endpoint": ENDPOINT, "at": "2025-03-10T14:00:00Z", "format": "json"})
    data = json.loads(b"".join(response.streaming_content))
    (answer,) = data["items"]
    assert answer["variants"][0]["package"]["version"] == 2
    assert answer["variants"][0]["rollback_candidate"]["version"] == 1
    csv_text = b"".join(
        compliance_client.get(url, {"endpoint": ENDPOINT, "at": "2025-03-10T14:00Z", "format": "csv"}).streaming_content
    ).decode()
    assert "approval status" in csv_text and f"cloudtrail:{history.v2_approval.event_id}" in csv_text
    nothing = viewer_client.get(url, {"endpoint": ENDPOINT, "at": "2025-03-09"})
    assert "Nothing was deployed" in nothing.content.decode()
    assert viewer_client.get(url, {"endpoint": ENDPOINT, "at": "soon"}).status_code == 400
    assert viewer_client.get(url).status_code == 200


def test_missing_links_of_a_window_are_stated(db: None) -> None:
    package = ModelPackageFactory()
    deployment(
        "half-known",
        None,
        at(0),
        evidence={
            "events": {"deploy": "evt-1", "config": "evt-2"},
            "missing": ["CreateModel half-known-model: not in the ingested CloudTrail (older than its retention)"],
        },
    )
    answer = as_of("HALF-KNOWN", at(1))  # endpoint names match case-insensitively
    (variant,) = answer.variants
    assert {e.ref for e in variant.evidence} >= {"cloudtrail:evt-1", "cloudtrail:evt-2"}
    assert any("CreateModel half-known-model" in line for line in answer.missing)
    assert any("No model package is known" in line for line in answer.missing)
    assert variant.package.package is None and variant.package.facts[0].missing
    assert package.pk  # unrelated package stays out of the answer


def _chain() -> dict[str, Any]:
    """CloudTrail records of the full deploy chain, as the ingest stores them (aws-formats §2.4)."""
    source = RegistrySourceFactory(name="prod-eu")
    group = ModelPackageGroupFactory(source=source, name="fraud")
    v1 = ModelPackageFactory(group=group, version=1, approval_status=ApprovalStatus.APPROVED)
    v2 = ModelPackageFactory(group=group, version=2, approval_status=ApprovalStatus.APPROVED)
    status_call(v1, "Approved", at(-10))
    status_call(v2, "Approved", at(3))
    ids: dict[str, Any] = {"v1": v1, "v2": v2}
    for n, package in ((1, v1), (2, v2)):
        ids[f"model{n}"] = cloudtrail(
            "CreateModel",
            at(-20 + n),
            request={"modelName": f"fraud-m{n}", "primaryContainer": {"modelPackageName": package.arn}},
            resource_type="model",
            resource_name=f"fraud-m{n}",
        )
        ids[f"config{n}"] = cloudtrail(
            "CreateEndpointConfig",
            at(-20 + n, minutes=5),
            request={
                "endpointConfigName": f"fraud-cfg{n}",
                "productionVariants": [
                    {"variantName": "AllTraffic", "modelName": f"fraud-m{n}", "initialVariantWeight": 1.0}
                ],
            },
            resource_type="endpoint_config",
            resource_name=f"fraud-cfg{n}",
        )
    for key, name, config, when in (
        ("deploy", "CreateEndpoint", "fraud-cfg1", at(0)),
        ("update", "UpdateEndpoint", "fraud-cfg2", at(4)),
        ("rollback", "UpdateEndpoint", "fraud-cfg1", at(6)),
    ):
        ids[key] = cloudtrail(
            name, when, endpoint_name="fraud-prod", request={"endpointConfigName": config}, actor="deployer"
        )
    return ids


def test_as_of_over_the_rebuilt_deployment_history(db: None) -> None:
    """End to end with the deployment rebuild: CreateModel -> CreateEndpointConfig -> Create/UpdateEndpoint."""
    from registry_app.audit.deployments import rebuild_deployments

    ids = _chain()
    rebuild_deployments("fraud-prod")
    assert as_of("fraud-prod", at(-1)).nothing_deployed
    expected = {at(2): ("v1", "deploy", 1), at(5): ("v2", "update", 2), at(7): ("v1", "rollback", 1)}
    for moment, (version_key, deploy_key, config_n) in expected.items():
        answer = as_of("fraud-prod", moment)
        (variant,) = answer.variants
        assert variant.package.package == ids[version_key], moment
        refs = {e.ref for e in variant.evidence}
        for event in (ids[deploy_key], ids[f"config{config_n}"], ids[f"model{config_n}"]):
            assert f"cloudtrail:{event.event_id}" in refs, (moment, event.event_name)
        assert _fact(variant, "approval status").value == "Approved"
    assert as_of("fraud-prod", at(5)).variants[0].rollback.package == ids["v1"]  # type: ignore[union-attr]


def test_content_changed_before_the_mirror_first_saw_it(history: History) -> None:
    cloudtrail(
        "UpdateModelPackage",
        at(5.5),
        package=history.v2,
        request={"customerMetadataProperties": {"TrainingDataS3VersionId": "v2-fixed"}},
    )
    (variant,) = as_of(ENDPOINT, at(5)).variants
    coverage = _fact(variant, "content before the mirror's first sighting")
    assert coverage.value.startswith("changed after this time") and coverage.missing
    assert len(coverage.evidence) == 1 and coverage.evidence[0].ref.startswith("cloudtrail:")


def test_no_cloudtrail_before_the_mirror_says_so(db: None) -> None:
    package = ModelPackageFactory(created_at=at(-5))
    deployment("quiet-prod", package, at(0))
    answer = as_of("quiet-prod", at(1))
    (variant,) = answer.variants
    coverage = _fact(variant, "content before the mirror's first sighting")
    assert coverage.value == "unknown" and "does not reach back" in coverage.missing
    assert _fact(variant, "approval status").missing  # no status evidence either
