"""Where the policy version shows: the review page ("approved under high-risk v1", "signed under
high-risk v1", the reason a sign-off went stale), the decided list, the timeline export, the auditor
pack, and the ApprovalPolicy admin's versions and diff (staff only; versions never editable)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

import pytest
from django.urls import reverse

from registry_app.audit.log import audit_context
from registry_app.models import ApprovalPolicy, AuditLogEntry, ModelPackage, PolicyVersion
from registry_app.review.signoffs import signoff_create
from tests.views.test_review_support import client_for, package_in_state, persona_user, url

pytestmark = pytest.mark.django_db

ROLES = {"ml-lead": 1, "fairness": 1, "compliance": 1}


@pytest.fixture
def story() -> dict[str, Any]:
    """high-risk v1: v1 of credit-risk decided (approved); v2 of it pending with an ML-lead approval.
    Then the admin publishes v2 (SLA 48 h -> 36 h)."""
    people = {name: persona_user(name) for name in ("mlead", "fair", "comp", "staff")}
    admin = persona_user("staff")
    admin.is_superuser = True
    admin.save()
    policy = ApprovalPolicy.objects.create(
        name="high-risk", tag_key="RiskTier", tag_value="High", spec={"required_roles": ROLES, "sla_hours": 48}
    )
    decided = package_in_state("pending", version=1)
    pending = package_in_state("pending", version=2)
    for name, role in (("mlead", "ml-lead"), ("fair", "fairness"), ("comp", "compliance")):
        signoff_create(user=people[name], package_id=decided.pk, role=role, decision="approve", comment="")
    signoff_create(user=people["mlead"], package_id=pending.pk, role="ml-lead", decision="approve", comment="")
    policy.spec = {**policy.spec, "sla_hours": 36}
    with audit_context(actor=admin, via=AuditLogEntry.Via.WEB):
        policy.save()
    return {"people": people, "admin": admin, "policy": policy, "decided": decided, "pending": pending}


def body(user: Any, path: str, **params: Any) -> str:
    response = client_for(user).get(path, params)
    assert response.status_code == 200, path
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


def test_review_page_shows_the_version_of_the_decision_and_of_older_signoffs(story: dict[str, Any]) -> None:
    viewer = persona_user("viewer")
    decided = body(viewer, url("package_detail", story["decided"]))
    assert "in force: <span" in decided and "high-risk v2" in decided
    assert 'Decision: <span class="strong">approved under high-risk v1</span>' in decided
    pending = body(viewer, url("package_detail", story["pending"]))
    assert "signed under high-risk v1" in pending and "Decision: <span" not in pending


def test_review_page_says_why_a_signoff_went_stale(story: dict[str, Any]) -> None:
    policy = story["policy"]
    policy.spec = {**policy.spec, "required_roles": {"fairness": 1, "compliance": 1}}
    policy.save()
    page = body(persona_user("viewer"), url("package_detail", story["pending"]))
    assert "high-risk v3 no longer requires the ml-lead role" in page and "stale — must be redone" in page


def test_decided_list_shows_the_version(story: dict[str, Any]) -> None:
    page = body(persona_user("viewer"), reverse("registry:queue"), tab="decided")
    assert '<span class="subtle decided-under">approved under high-risk v1</span>' in page


def test_timeline_export_and_pack_carry_label_and_number(story: dict[str, Any]) -> None:
    comp = story["people"]["comp"]
    package = story["decided"]
    exported = body(comp, url("package_audit", package), format="csv")
    rows = [r for r in csv.DictReader(io.StringIO(exported)) if r["kind"] in ("signoff", "decision")]
    assert len(rows) == 4
    for row in rows:
        raw = json.loads(row["raw"])
        assert (raw["policy_version"], raw["policy_version_number"]) == ("high-risk v1", 1)
    response = client_for(comp).get(reverse("registry:package_audit_pack", args=[package.group.name, 1]))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    decisions = json.loads(archive.read("decisions.json"))
    assert [(d["policy_version"], d["policy_version_number"]) for d in decisions] == [("high-risk v1", 1)]
    signoffs = list(csv.DictReader(io.StringIO(archive.read("signoffs.csv").decode())))
    assert {(s["policy_version"], s["policy_version_number"]) for s in signoffs} == {("high-risk v1", "1")}


def test_admin_shows_versions_and_diff_to_staff_only(story: dict[str, Any]) -> None:
    policy, admin = story["policy"], story["admin"]
    v1, v2 = PolicyVersion.objects.filter(policy=policy).order_by("number")
    change = body(admin, reverse("admin:registry_app_approvalpolicy_change", args=[policy.pk]))
    assert "high-risk v1" in change and "high-risk v2" in change and v2.digest[:12] in change
    assert "<code>sla_hours</code>: 48 &rarr; 36" in change
    assert body(admin, reverse("admin:registry_app_approvalpolicy_changelist")).count("high-risk v2") >= 1
    assert "high-risk v1" in body(admin, reverse("admin:registry_app_decision_changelist"))
    assert "high-risk v1" in body(admin, reverse("admin:registry_app_signoff_changelist"))
    assert "high-risk v2" in body(admin, reverse("admin:registry_app_policyversion_changelist"))
    version_page = body(admin, reverse("admin:registry_app_policyversion_change", args=[v2.pk]))
    assert "<code>sla_hours</code>: 48 &rarr; 36" in version_page and 'name="_save"' not in version_page
    client = client_for(admin)
    refused = client.post(reverse("admin:registry_app_policyversion_change", args=[v1.pk]), {"number": 9})
    assert refused.status_code == 403
    assert client.get(reverse("admin:registry_app_policyversion_add")).status_code == 403
    assert client.post(reverse("admin:registry_app_policyversion_delete", args=[v1.pk])).status_code == 403
    assert PolicyVersion.objects.get(pk=v1.pk).number == 1
    # Non-staff: the admin sends them to its login page.
    for user in (story["people"]["comp"], None):
        response = client_for(user).get(reverse("admin:registry_app_approvalpolicy_change", args=[policy.pk]))
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_admin_edit_publishes_a_version_by_that_admin(story: dict[str, Any]) -> None:
    policy, admin = story["policy"], story["admin"]
    client = client_for(admin)
    data = {
        "name": "high-risk",
        "spec": json.dumps({"required_roles": ROLES, "sla_hours": 24}),
        "tag_key": "RiskTier",
        "tag_value": "High",
        "group_name": "",
        "priority": "0",
    }
    response = client.post(reverse("admin:registry_app_approvalpolicy_change", args=[policy.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    latest = PolicyVersion.objects.filter(policy=policy).order_by("-number").first()
    assert (latest.number, latest.spec["sla_hours"], latest.published_by) == (3, 24, admin)
    response = client.post(reverse("admin:registry_app_approvalpolicy_change", args=[policy.pk]), data)
    assert PolicyVersion.objects.filter(policy=policy).count() == 3  # the same content: no new version
    assert ModelPackage.objects.get(pk=story["pending"].pk).signoffs.get().stale_at is None
