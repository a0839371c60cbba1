"""Things deleted under a live endpoint (issue 9 item 4, mirror side): the adapter reports SageMaker's
"Could not find model / endpoint configuration / endpoint" as ``NotFoundError``, and the endpoint sync
keeps what it last knew instead of failing the run (or logging an error on every pass)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from registry_app.aws.errors import NotFoundError
from registry_app.aws.sagemaker import RegistryClient
from registry_app.mirror.execute import sync_source
from registry_app.models import Endpoint, EndpointVariant, ModelPackage, SyncRun
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture
def serving(aws: None, source: Any) -> tuple[Any, str]:
    """Endpoint credit-prod serving credit-risk v1 through model credit-v1; the mirror synced."""
    sm, _ = h.clients()
    h.create_group(sm, "credit-risk")
    arn = h.create_package(sm, "credit-risk", status="Approved")
    sm.create_model(
        ModelName="credit-v1", PrimaryContainer={"ModelPackageName": arn}, ExecutionRoleArn="arn:aws:iam::1:role/x"
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "credit-v1", "InitialInstanceCount": 1}
    variant["InstanceType"] = "ml.m5.large"
    sm.create_endpoint_config(EndpointConfigName="credit-cfg", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName="credit-prod", EndpointConfigName="credit-cfg")
    assert sync_source(source, mode=SyncRun.Mode.FULL).status == SyncRun.Status.SUCCEEDED
    return sm, arn


def endpoints_pass(source: Any) -> SyncRun:
    """The cards-and-endpoints pass, with the endpoint changed since the last one (so it is described)."""
    Endpoint.objects.update(last_modified_at=None)
    return sync_source(source, mode=SyncRun.Mode.ENDPOINTS)


def test_a_deleted_model_keeps_its_variant_and_last_known_package(serving, source, staff_user) -> None:  # type: ignore[no-untyped-def]
    sm, arn = serving
    sm.delete_model(ModelName="credit-v1")

    for _ in range(2):  # and again: no error on any pass
        run = endpoints_pass(source)
        assert run.status == SyncRun.Status.SUCCEEDED and not run.errors
        assert run.counts["variant_models_deleted"] == 1

    variant = EndpointVariant.objects.get()
    assert variant.model_deleted and variant.model_name == "credit-v1"
    assert (variant.package, variant.package_arn) == (ModelPackage.objects.get(arn=arn), arn)

    client = Client()
    client.force_login(staff_user)
    html = client.get(reverse("registry:endpoint_detail", args=["credit-prod"])).content.decode()
    assert "Model deleted" in html and "last known package" in html and "credit-risk v1" in html


def test_a_deleted_config_keeps_the_last_known_variants(serving, source) -> None:  # type: ignore[no-untyped-def]
    sm, arn = serving
    sm.delete_endpoint_config(EndpointConfigName="credit-cfg")

    run = endpoints_pass(source)

    assert run.status == SyncRun.Status.SUCCEEDED and not run.errors
    variant = EndpointVariant.objects.get()
    assert (variant.variant_name, variant.package_arn, variant.model_deleted) == ("AllTraffic", arn, False)
    assert Endpoint.objects.get().config_name == "credit-cfg"


def test_an_endpoint_gone_since_the_listing_is_left_to_the_next_listing(serving, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def gone(self: RegistryClient, name: str) -> dict[str, Any]:
        raise NotFoundError(f'DescribeEndpoint: ValidationException: Could not find endpoint "{name}".')

    monkeypatch.setattr(RegistryClient, "describe_endpoint", gone)
    run = endpoints_pass(source)
    assert run.status == SyncRun.Status.SUCCEEDED and not run.errors
    assert run.counts["endpoints_vanished_before_describe"] == 1
    assert Endpoint.objects.get().deleted_at is None  # the listing still showed it

    monkeypatch.undo()
    sm, _ = serving
    sm.delete_endpoint(EndpointName="credit-prod")
    assert sync_source(source, mode=SyncRun.Mode.ENDPOINTS).counts["endpoints_deleted"] == 1
