"""Fixtures for the audit pages and services: personas per role, logged-in clients, a package."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from registry_app.models import ModelPackage
from registry_app.models.registry import ApprovalStatus
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory, RegistrySourceFactory
from tests.personas import make_user  # noqa: F401 - re-exported


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def compliance_user(db: None) -> Any:
    return make_user("connie", "compliance")


@pytest.fixture
def viewer_user(db: None) -> Any:
    return make_user("vera", "viewer")


@pytest.fixture
def compliance_client(compliance_user: Any) -> Client:
    return client_for(compliance_user)


@pytest.fixture
def viewer_client(viewer_user: Any) -> Client:
    return client_for(viewer_user)


@pytest.fixture
def staff_client(db: None) -> Client:
    return client_for(make_user("stan", is_staff=True))


@pytest.fixture
def package(db: None) -> ModelPackage:
    source = RegistrySourceFactory(name="prod-eu", region="eu-west-1", account_id="111122223333")
    group = ModelPackageGroupFactory(source=source, name="credit-risk")
    return ModelPackageFactory(group=group, version=3, approval_status=ApprovalStatus.PENDING)
