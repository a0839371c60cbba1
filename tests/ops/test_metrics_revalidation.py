"""Issue 15: the ``governance_revalidation_overdue_models`` gauge of /metrics."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry_app.models import ApprovalPolicy, Decision
from registry_app.models.registry import ApprovalStatus
from registry_app.ops.metrics import GovernanceCollector
from registry_app.ops.metrics_revalidation import QUERIES, revalidation_families
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory

pytestmark = pytest.mark.django_db


def _approved(days_ago: int) -> Any:
    package = ModelPackageFactory(group=ModelPackageGroupFactory(), approval_status=ApprovalStatus.APPROVED)
    decision = Decision.objects.create(package=package, kind="policy", status="Approved")
    Decision.objects.filter(pk=decision.pk).update(created_at=timezone.now() - dt.timedelta(days=days_ago))
    return package


def _gauges(now: dt.datetime) -> dict[str, float]:
    return {
        f.name: f.samples[0].value for f in GovernanceCollector(now=lambda: now).collect() if "revalidation" in f.name
    }


def test_the_gauge_counts_overdue_models_and_costs_constant_queries() -> None:
    ApprovalPolicy.objects.create(
        name="high", spec={"name": "high", "revalidate_every_days": 30, "revalidation_grace_days": 10}, is_default=True
    )
    now = timezone.now()
    for days in (35, 45, 5):  # due, overdue, current
        _approved(days)
    assert _gauges(now) == {
        "governance_revalidation_overdue_models": 1.0,
        "governance_revalidation_due_models": 1.0,
    }
    with CaptureQueriesContext(connection) as small:
        list(revalidation_families(now))
    for days in (50, 60, 70, 31):
        _approved(days)
    with CaptureQueriesContext(connection) as large:
        list(revalidation_families(now))
    assert len(small.captured_queries) == len(large.captured_queries) == QUERIES
    assert _gauges(now)["governance_revalidation_overdue_models"] == 4.0


def test_no_policy_with_revalidation_means_zero() -> None:
    _approved(4000)
    assert _gauges(timezone.now())["governance_revalidation_overdue_models"] == 0.0
