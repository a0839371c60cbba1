"""Fixtures for the page tests: logged-in clients per persona and a builder for richly populated groups."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from registry_app.models import ModelPackage, ModelPackageGroup, RegistrySource
from registry_app.models.registry import ApprovalStatus
from tests.factories import (
    EndpointFactory,
    EndpointVariantFactory,
    EvaluationReportFactory,
    MetricFactory,
    ModelCardFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    PackageObservationFactory,
    RegistrySourceFactory,
    UserFactory,
)

STATUS_CYCLE = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)


@pytest.fixture
def reviewer_client(db: None) -> Client:
    """A logged-in non-staff user (an ML lead, fairness reviewer or compliance officer)."""
    client = Client()
    client.force_login(UserFactory(username="reviewer"))
    return client


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    client.force_login(UserFactory(username="operator", is_staff=True))
    return client


@pytest.fixture
def registry_source(db: None) -> RegistrySource:
    return RegistrySourceFactory(name="prod-eu", region="eu-west-1", account_id="111122223333")


BuildGroup = Callable[..., ModelPackageGroup]


@pytest.fixture
def build_group(db: None) -> BuildGroup:
    """Return ``build(name, versions, source=None)``: a group whose every version has 2 reports with
    3 metrics each, 3 observations, a deployment, and a standalone or embedded model card."""

    def build(name: str, versions: int, source: RegistrySource | None = None, **group_fields: Any) -> ModelPackageGroup:
        source = source or RegistrySourceFactory(name="prod-eu", region="eu-west-1", account_id="111122223333")
        group = ModelPackageGroupFactory(source=source, name=name, **group_fields)
        endpoint = EndpointFactory(source=source, name=f"{name}-endpoint")
        now = timezone.now()
        for version in range(1, versions + 1):
            card = ModelCardFactory(source=source, name=f"{name}-card-{version}") if version % 2 else None
            package = ModelPackageFactory(
                group=group,
                version=version,
                approval_status=STATUS_CYCLE[version % 3],
                model_card=card,
                embedded_card_status="" if card else "Draft",
                embedded_card_content=None if card else {"intended_uses": {"risk_rating": "Low"}},
            )
            _populate(package, endpoint=endpoint, now=now)
        return group

    return build


def _populate(package: ModelPackage, *, endpoint: Any, now: dt.datetime) -> None:
    quality = EvaluationReportFactory(package=package, slot="ModelQuality.Statistics")
    for name, value in (("auc", 0.91), ("accuracy", 0.85), ("f1", 0.7)):
        MetricFactory(report=quality, name=name, value=value)
    bias = EvaluationReportFactory(
        package=package, slot="Bias.PostTrainingReport", kind="clarify_bias", confusion_matrix=None
    )
    for facet in ("Gender=0", "Gender=1", "Age=old"):
        MetricFactory(report=bias, name="AD", value=-0.11, facet=facet, stage="post_training", kind="clarify_bias")
    for minutes in (30, 20, 10):
        PackageObservationFactory(package=package, observed_at=now - dt.timedelta(minutes=minutes))
    EndpointVariantFactory(endpoint=endpoint, package=package, variant_name=f"v{package.version}")
