"""The demo's policy with two versions (registry_app/devtools/demo_policy_versions.py): decisions
under default v1 keep it, pending reviews move to default v2, published by the demo admin."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from registry_app.devtools.demo_policy_versions import stage_policy_versions
from registry_app.models import ApprovalPolicy, AuditLogEntry, SignOff
from registry_app.review.policy_versions import version_in_force
from registry_app.review.signoffs import signoff_create
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory

pytestmark = pytest.mark.django_db


def test_default_v2_is_published_by_the_admin_after_decisions_under_v1() -> None:
    out = io.StringIO()
    call_command("create_demo_users", "--password", "demo-governance", stdout=out)
    call_command("create_demo_policies", stdout=out)
    demand = ModelPackageGroupFactory(name="demand-forecast", tags={"RiskTier": "Medium"})
    decided = ModelPackageFactory(group=demand)
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.all()}
    for name, role in (("mlead", "ml-lead"), ("fairness", "fairness"), ("compliance", "compliance")):
        result = signoff_create(user=users[name], package_id=decided.pk, role=role, decision="approve", comment="")
    assert result.decision is not None
    support = ModelPackageFactory(group=ModelPackageGroupFactory(name="support-ticket-router", tags={}))

    line = stage_policy_versions()

    assert "default v2 published by admin" in line and "mlead approved support-ticket-router" in line
    default = ApprovalPolicy.objects.get(name="default")
    assert default.current_version.label == "default v2" and default.current_version.published_by == users["admin"]
    assert default.current_version.spec["sla_hours"] == 96
    assert result.decision.policy_version.label == "default v1"  # decided: keeps v1
    assert SignOff.objects.get(package=support).policy_version.label == "default v1"  # "signed under default v1"
    assert version_in_force(support.group).label == "default v2"  # the pending review is under v2
    assert not SignOff.objects.filter(stale_at__isnull=False).exists()  # an SLA change stales nothing
    assert AuditLogEntry.objects.filter(action="policy.published", actor_name="admin").count() == 1
    assert stage_policy_versions() == ""  # idempotent
    assert default.versions.count() == 2
