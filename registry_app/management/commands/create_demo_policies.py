"""Approval policies for the demo registry: a default, a stricter one for RiskTier=High groups,
and one with regression gates for the house-price model (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from registry_app.models import ApprovalPolicy
from registry_app.review.policy import PolicySpec

DEMO_POLICIES: list[dict[str, Any]] = [
    {
        "row": {"name": "default", "is_default": True},
        "spec": {"name": "default", "required_roles": {"ml-lead": 1, "fairness": 1, "compliance": 1}, "sla_hours": 72},
    },
    {
        "row": {"name": "high-risk", "tag_key": "RiskTier", "tag_value": "High", "priority": 10},
        "spec": {
            "name": "high-risk",
            "required_roles": {"ml-lead": 1, "fairness": 1, "compliance": 1},
            "gates": ["auc >= 0.85", "DI >= 0.8", "abs(DPPL) <= 0.1"],
            "sla_hours": 48,
            "revalidate_every_days": 30,  # issue 15: monthly, so the demo's history has due and overdue models
            "revalidation_grace_days": 30,
        },
    },
    {
        "row": {"name": "house-price", "group_name": "house-price-regressor", "priority": 20},
        "spec": {
            "name": "house-price",
            "required_roles": {"ml-lead": 1, "fairness": 1, "compliance": 1},
            "gates": ["rmse <= 45", "r2 >= 0.85"],
            "sla_hours": 120,
        },
    },
]


class Command(BaseCommand):
    help = "Create the demo's approval policies (default, RiskTier=High, house-price)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for entry in DEMO_POLICIES:
            spec = PolicySpec.from_dict(entry["spec"]).to_dict()  # validated exactly as the admin does
            row = dict(entry["row"])
            name = row.pop("name")
            ApprovalPolicy.objects.update_or_create(name=name, defaults={**row, "spec": spec})
            gates = ", ".join(spec.get("gates") or []) or "no metric gates"
            self.stdout.write(f"policy {name}: {gates}")
