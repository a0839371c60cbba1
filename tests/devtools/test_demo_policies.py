"""The demo's approval policies load through the same validation as the admin and resolve as intended."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from registry_app.models import ApprovalPolicy
from registry_app.review.policies import policy_for_group
from tests.factories import ModelPackageGroupFactory

pytestmark = pytest.mark.django_db


def test_demo_policies_idempotent_and_resolved() -> None:
    call_command("create_demo_policies")
    call_command("create_demo_policies")
    assert ApprovalPolicy.objects.count() == 3
    high = ModelPackageGroupFactory(name="fraud-detector", tags={"RiskTier": "High"})
    house = ModelPackageGroupFactory(name="house-price-regressor", tags={"RiskTier": "Low"})
    other = ModelPackageGroupFactory(name="churn-propensity", tags={"RiskTier": "Medium"})
    assert policy_for_group(high).name == "high-risk"
    assert [str(g) for g in policy_for_group(high).gates] == ["auc >= 0.85", "DI >= 0.8", "abs(DPPL) <= 0.1"]
    assert policy_for_group(house).name == "house-price"
    assert policy_for_group(other).name == "default"
    assert policy_for_group(other).gates == ()
