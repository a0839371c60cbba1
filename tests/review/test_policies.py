"""Stored policies (resolution and the admin form) and the grant_role command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from registry_app.admin import ApprovalPolicyForm
from registry_app.models import ApprovalPolicy
from registry_app.review.policies import policy_for_group
from registry_app.review.policy import DEFAULT_POLICY
from tests.factories import ModelPackageGroupFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_policy_resolution_order(db: None) -> None:
    credit = ModelPackageGroupFactory(name="credit-risk", tags={"RiskTier": "High"})
    house = ModelPackageGroupFactory(name="house-price", tags={"RiskTier": "High"})
    plain = ModelPackageGroupFactory(name="other", tags={})
    assert policy_for_group(plain) == DEFAULT_POLICY
    ApprovalPolicy.objects.create(name="house-default", is_default=True, spec={"required_roles": {"ml-lead": 1}})
    ApprovalPolicy.objects.create(
        name="high", tag_key="RiskTier", tag_value="High", spec={"required_roles": {"compliance": 2}}
    )
    ApprovalPolicy.objects.create(name="credit", group_name="credit-risk", spec={"required_roles": {"fairness": 1}})
    ApprovalPolicy.objects.create(name="broken", group_name="other", spec={"required_roles": {}})  # skipped
    assert policy_for_group(credit).name == "credit"
    assert policy_for_group(house).name == "high"
    assert policy_for_group(house).required_roles == {"compliance": 2}
    assert policy_for_group(plain).name == "house-default"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "p", "spec": '{"gates": ["auc >> 0.8"]}', "is_default": True}, "spec", "operator"),
        ({"name": "p", "spec": '{"required_roles": {"ml-lead": 0}}', "is_default": True}, "spec", "at least 1"),
        ({"name": "p", "spec": '{"bogus": 1}', "is_default": True}, "spec", "unknown policy key"),
        ({"name": "p", "spec": "{}", "is_default": True, "group_name": "g"}, "is_default", "applies everywhere"),
        ({"name": "p", "spec": "{}"}, "group_name", "Say where"),
        ({"name": "p", "spec": "{}", "group_name": "g", "tag_key": "RiskTier"}, "tag_key", "not both"),
    ],
)
def test_admin_form_rejects_invalid_policies(data: dict[str, object], field: str, message: str) -> None:
    form = ApprovalPolicyForm(data={"priority": 0, **data})
    assert not form.is_valid()
    assert message in " ".join(form.errors[field]), form.errors


def test_admin_form_stores_the_normalised_spec() -> None:
    form = ApprovalPolicyForm(
        data={
            "name": "high",
            "spec": '{"gates": ["auc>=0.9"]}',
            "tag_key": "RiskTier",
            "tag_value": "High",
            "priority": 1,
        }
    )
    assert form.is_valid(), form.errors
    policy = form.save()
    assert policy.spec["name"] == "high"
    assert policy.spec["gates"] == ["auc >= 0.9"]
    assert policy.spec["required_roles"] == {"ml-lead": 1, "fairness": 1, "compliance": 1}


def test_admin_registers_governance_models() -> None:
    from django.contrib import admin

    from registry_app import models

    for model in (models.ApprovalPolicy, models.SignOff, models.Decision, models.PushOutbox):
        assert model in admin.site._registry
    assert admin.site._registry[models.PushOutbox].has_change_permission(None) is False


def test_grant_role_creates_the_group_and_revokes(db: None) -> None:
    user = UserFactory(username="Dana")
    out = StringIO()
    call_command("grant_role", "dana", "data-privacy", stdout=out)
    assert "Created the data-privacy role" in out.getvalue()
    assert "not a built-in role" in out.getvalue()
    assert list(user.groups.values_list("name", flat=True)) == ["data-privacy"]
    out = StringIO()
    call_command("grant_role", "Dana", "data-privacy", stdout=out)
    assert "already holds" in out.getvalue()
    call_command("grant_role", "Dana", "data-privacy", "--revoke", stdout=StringIO())
    assert not user.groups.exists()
    assert Group.objects.filter(name="data-privacy").exists()  # the role stays for others
    out = StringIO()
    call_command("grant_role", "Dana", "compliance", "--revoke", stdout=out)
    assert "nothing to do" in out.getvalue()
    with pytest.raises(CommandError, match="no user"):
        call_command("grant_role", "ghost", "ml-lead", stdout=StringIO())
