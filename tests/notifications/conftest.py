"""Fixtures for notification tests: reviewers per role, an outsider, a pending package, SITE_URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import LazySettings

from registry_app.models import ModelPackage
from registry_app.models.registry import ApprovalStatus
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory
from tests.personas import make_user  # noqa: F401 - re-exported

SITE = "https://governance.example.test"
ROLES = ("ml-lead", "fairness", "compliance")


@pytest.fixture(autouse=True)
def site_url(settings: LazySettings) -> str:
    settings.SITE_URL = SITE
    settings.DEFAULT_FROM_EMAIL = "governance@example.test"
    return SITE


@pytest.fixture
def reviewers(db: None) -> dict[str, Any]:
    """One holder of each default role, keyed by role."""
    return {
        "ml-lead": make_user("lena", "ml-lead", first_name="Lena", last_name="Lead"),
        "fairness": make_user("farid", "fairness"),
        "compliance": make_user("connie", "compliance"),
    }


@pytest.fixture
def outsider(db: None) -> Any:
    return make_user("otto", "data-scientist")


@pytest.fixture
def package(db: None) -> ModelPackage:
    group = ModelPackageGroupFactory(name="credit-risk")
    return ModelPackageFactory(group=group, version=3, approval_status=ApprovalStatus.PENDING)


@pytest.fixture
def eager() -> Iterator[None]:
    """Run ``.delay()`` in-process (as a worker would), restoring the setting afterwards."""
    from governance.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = before
