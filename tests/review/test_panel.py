"""The review panel selector: contents, and a query count that does not grow with the data."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry_app.models import ModelPackage, PushOutbox, SignOff
from registry_app.review.panel import review_state
from registry_app.review.state import package_fingerprint
from tests.factories import (
    EvaluationReportFactory,
    MetricFactory,
    ModelCardFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
)
from tests.review.conftest import make_user

pytestmark = pytest.mark.django_db

METRICS = ("auc", "accuracy", "f1", "mse", "DPPL")


def build(n: int, prefix: str) -> tuple[ModelPackage, Any]:
    """A group with ``n`` older versions (approved, each with metrics), and a pending version with
    ``n`` metrics, ``n`` sign-offs (some stale) and ``n`` pushes."""
    group = ModelPackageGroupFactory(name=f"{prefix}-group")
    for version in range(1, n + 1):
        old = ModelPackageFactory(group=group, version=version, approval_status="Approved")
        report = EvaluationReportFactory(package=old, slot="ModelQuality.Statistics")
        for i in range(n):
            MetricFactory(report=report, name=METRICS[i % len(METRICS)], facet=f"f{i}", value=0.8)
    card = ModelCardFactory(
        content={"training_details": {"training_job_details": {"hyper_parameters": [{"name": "eta", "value": "0.3"}]}}}
    )
    package = ModelPackageFactory(group=group, version=n + 1, model_card=card)
    report = EvaluationReportFactory(package=package, slot="ModelQuality.Statistics")
    for i in range(n):
        MetricFactory(report=report, name=METRICS[i % len(METRICS)], facet=f"f{i}", value=0.9)
    fingerprint, _ = package_fingerprint(package)
    for i in range(n):
        signer = make_user(f"{prefix}-signer{i}", "ml-lead")
        SignOff.objects.create(
            package=package,
            user=signer,
            role="ml-lead",
            decision="approve",
            fingerprint=fingerprint if i % 2 else "old",
        )
        PushOutbox.objects.create(
            package=package,
            kind=PushOutbox.Kind.FLAGS,
            flags={"MLEngineerApproved": "true"},
            expected_status="PendingManualApproval",
            state=PushOutbox.State.FAILED if i == n - 1 else PushOutbox.State.SENT,
        )
    make_user(f"{prefix}-viewer", "fairness", is_staff=True)
    return package, None


def fresh(username: str) -> Any:
    return get_user_model().objects.get(username=username)


def load(package: ModelPackage) -> ModelPackage:
    return ModelPackage.objects.select_related("group", "source", "model_card").get(pk=package.pk)


def count_queries(package: ModelPackage, username: str) -> int:
    package, user = load(package), fresh(username)
    with CaptureQueriesContext(connection) as ctx:
        review_state(package, user)
    return len(ctx.captured_queries)


def test_query_count_is_constant(db: None) -> None:
    small, _ = build(2, "small")
    large, _ = build(30, "large")
    few = count_queries(small, "small-viewer")
    many = count_queries(large, "large-viewer")
    assert few == many, (few, many)
    assert many <= 12, many  # 10, plus the findings applying and the approval's conditions


def test_contents(db: None) -> None:
    package, _ = build(3, "g")
    state = review_state(load(package), fresh("g-viewer"))
    assert state.policy.name == "default"
    assert [s.is_stale for s in state.signoffs] == [True, False, True]
    assert state.signable_roles == ["fairness"]
    assert state.cannot_sign_reason == ""
    assert [p.created_at for p in state.pushes] == sorted((p.created_at for p in state.pushes), reverse=True)
    assert state.latest_push == state.pushes[0]
    assert state.can_retry_push is True  # staff, and one push failed
    assert state.can_revoke is False
    assert state.baseline_package is not None and state.baseline_package.version == 3
    auc = next(m for m in state.metrics_vs_approved if m.name == "auc")
    assert (auc.value, auc.baseline) == (0.9, 0.8)
    assert auc.delta == pytest.approx(0.1) and auc.better is True
    assert state.previous_package is not None and state.previous_package.version == 3
    labels = {row.label: row for row in state.diff_from_previous}
    assert labels["Reproducibility: TrainingDataS3VersionId"].after.startswith("v4-")
    assert labels["Model data URL"].before.endswith("/3/model.tar.gz")
    assert labels["Hyperparameter: eta"].before == "" and labels["Hyperparameter: eta"].after == "0.3"
    assert "Image digest" not in labels  # unchanged rows are left out


def test_cannot_sign_reasons(personas: dict[str, Any]) -> None:
    package = ModelPackageFactory()
    assert review_state(package, personas["viewer"]).cannot_sign_reason.startswith("You hold none of the roles")
    approved = ModelPackageFactory(approval_status="Approved")
    state = review_state(approved, personas["comp"])
    assert state.signable_roles == [] and "already decided" in state.cannot_sign_reason
    assert state.can_revoke is True
    mine = ModelPackageFactory(created_by={"IamIdentity": {"Arn": "arn:aws:sts::1:assumed-role/R/fair"}})
    assert "registered this model package" in review_state(mine, personas["fair"]).cannot_sign_reason
    no_baseline = review_state(ModelPackageFactory(), personas["fair"])
    assert no_baseline.baseline_package is None
    assert all(m.baseline is None and m.better is None for m in no_baseline.metrics_vs_approved)
