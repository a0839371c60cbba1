"""Content-only changes reach the mirror within a pass (issue 9 item 1, sync side), and a first sync is
complete (item 10). On the AWS-faithful fake: UpdateModelPackage applies InferenceSpecification, ModelCard,
SourceUri and metadata without touching what ListModelPackages returns, and Search honours
LastModifiedTime filters, SortOrder and MaxResults/NextToken as AWS does."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registry_app.aws import sagemaker as adapter
from registry_app.aws.errors import AccessDeniedError
from registry_app.aws.sagemaker import RegistryClient
from registry_app.devtools import aws_fake
from registry_app.mirror.execute import sync_source
from registry_app.models import Endpoint, ModelCard, ModelPackage, RegistrySource, SyncRun
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db

DAY_AGO = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
NEW_IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/xgboost-inference:1.7-2"


@pytest.fixture
def registry(aws: None) -> tuple[Any, list[str]]:
    """One group of six packages, created (and last modified) a day ago."""
    sm, s3 = h.clients()
    h.make_bucket(s3)
    report = h.put_json(s3, "credit/evaluation.json", h.REGRESSION_REPORT)
    h.create_group(sm, "credit-risk")
    arns = [h.create_package(sm, "credit-risk", report_uri=report) for _ in range(6)]
    for index, arn in enumerate(arns):
        aws_fake.backdate_package(arn, DAY_AGO + dt.timedelta(minutes=index))
    return sm, arns


def new_image(sm: Any, arn: str, image: str = NEW_IMAGE) -> None:
    """A content-only change: the inference image (status, description, stage untouched)."""
    spec = sm.describe_model_package(ModelPackageName=arn)["InferenceSpecification"]
    spec["Containers"][0]["Image"] = image
    sm.update_model_package(ModelPackageArn=arn, InferenceSpecification=spec)


def fresh(source: RegistrySource) -> RegistrySource:
    source.refresh_from_db()
    return source


def test_an_incremental_pass_picks_up_a_content_only_change(registry, source) -> None:  # type: ignore[no-untyped-def]
    sm, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    new_image(sm, arns[2])
    sm.update_model_package(
        ModelPackageArn=arns[4],
        ModelCard={
            "ModelCardStatus": "Draft",
            "ModelCardContent": json.dumps({"model_overview": {"model_owner": "x"}}),
        },
        CustomerMetadataProperties={"ticket": "GOV-7"},
    )

    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)

    changed = ModelPackage.objects.get(arn=arns[2])
    assert changed.images[0]["Image"] == NEW_IMAGE
    assert "inference_specification" in changed.observations.get(change="updated").changes
    carded = ModelPackage.objects.get(arn=arns[4])
    assert carded.embedded_card_status == "Draft" and carded.customer_metadata["ticket"] == "GOV-7"
    # One Search page brought both full records: no describe, no report fetched again.
    assert run.aws_calls == {"ListModelPackages": 1, "Search": 1}
    assert run.counts["packages_updated"] == 2 and run.counts["search_records"] == 2
    assert fresh(source).search_watermark == carded.last_modified_at  # the newest change applied


def test_a_content_only_change_to_ten_packages_costs_one_search_page(aws, source) -> None:  # type: ignore[no-untyped-def]
    """The benchmark's third figure, as call counts: ten packages in ten groups get a new image; the
    incremental pass applies all ten from one Search page, with no describe and no S3 GET."""
    sm, s3 = h.clients()
    h.make_bucket(s3)
    report = h.put_json(s3, "evaluation.json", h.REGRESSION_REPORT)
    arns = []
    for g in range(10):
        h.create_group(sm, f"group-{g}")
        arns += [h.create_package(sm, f"group-{g}", report_uri=report) for _ in range(2)]
    for arn in arns:
        aws_fake.backdate_package(arn, DAY_AGO)
    sync_source(source, mode=SyncRun.Mode.FULL)
    touched = arns[::2]
    for arn in touched:
        new_image(sm, arn)

    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)

    assert run.aws_calls == {"ListModelPackages": 1, "Search": 1}
    assert run.counts["packages_updated"] == 10
    assert {p.arn for p in ModelPackage.objects.all() if p.images[0]["Image"] == NEW_IMAGE} == set(touched)


def test_no_change_incremental_is_the_listing_plus_one_search(registry, source) -> None:  # type: ignore[no-untyped-def]
    sync_source(source, mode=SyncRun.Mode.FULL)
    for _ in range(2):
        run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
        assert run.status == SyncRun.Status.SUCCEEDED
        assert run.aws_calls == {"ListModelPackages": 1, "Search": 1}
        assert "described" not in run.counts and "search_records" not in run.counts


def test_the_watermark_moves_only_past_committed_pages(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Search pages of two (as AWS pages 100): applying the second page fails, so the watermark stays
    after the first; the next pass reads the rest again and misses nothing."""
    from registry_app.mirror import apply

    sm, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)
    for arn in arns[:5]:
        new_image(sm, arn)
    monkeypatch.setattr(adapter, "PAGE_SIZE", 2)
    real = apply.PackageWriter._apply_record

    def broken_database(self, record, existing, **kwargs):  # type: ignore[no-untyped-def]
        if record["ModelPackageArn"] == arns[2]:
            raise RuntimeError("database went away")
        return real(self, record, existing, **kwargs)

    monkeypatch.setattr(apply.PackageWriter, "_apply_record", broken_database)
    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    assert run.status == SyncRun.Status.FAILED
    first_page = ModelPackage.objects.filter(arn__in=arns[:2])
    assert all(p.images[0]["Image"] == NEW_IMAGE for p in first_page)
    assert fresh(source).search_watermark == max(p.last_modified_at for p in first_page)

    monkeypatch.setattr(apply.PackageWriter, "_apply_record", real)
    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert all(p.images[0]["Image"] == NEW_IMAGE for p in ModelPackage.objects.filter(arn__in=arns[:5]))
    assert run.aws_calls["Search"] == 3  # ⌈5 changed (two re-read within the margin) / 2⌉
    assert fresh(source).search_watermark == ModelPackage.objects.get(arn=arns[4]).last_modified_at


def test_search_denied_is_said_on_the_sync_page_and_the_listing_goes_on(  # type: ignore[no-untyped-def]
    registry, source, monkeypatch, staff_user
) -> None:
    sm, arns = registry
    sync_source(source, mode=SyncRun.Mode.FULL)

    def denied(self, **kwargs):  # type: ignore[no-untyped-def]
        raise AccessDeniedError("Search: AccessDeniedException: not authorized to perform: sagemaker:Search")
        yield  # pragma: no cover

    monkeypatch.setattr(RegistryClient, "iter_search_package_pages", denied)
    h.set_status(sm, arns[0], "Approved")
    run = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    assert run.status == SyncRun.Status.SUCCEEDED  # relies on events and the nightly pass: no error
    assert run.counts["search_unavailable"] == 1
    assert ModelPackage.objects.get(arn=arns[0]).approval_status == "Approved"  # the listing still works
    assert fresh(source).search_denied_at is not None

    client = Client()
    client.force_login(staff_user)
    html = client.get(reverse("registry:sync_status")).content.decode()
    assert "Search is denied to this source's role" in html
    assert "nightly full reconciliation" in html and "not authorized to perform: sagemaker:Search" in html

    monkeypatch.undo()
    sync_source(source, mode=SyncRun.Mode.INCREMENTAL)
    assert fresh(source).search_denied_at is None  # Search works again: the note goes
    assert "Search is denied" not in client.get(reverse("registry:sync_status")).content.decode()


def test_a_first_sync_is_complete_whatever_mode_was_asked(aws: None, db: None) -> None:
    """``add_registry_source`` then a plain ``sync_registry``: packages, reports, the standalone card and
    the endpoint are all there; the next plain sync is incremental."""
    sm, s3 = h.clients()
    h.make_bucket(s3)
    h.create_group(sm, "churn")
    sm.create_model_card(ModelCardName="churn", Content=json.dumps({"model_overview": {}}), ModelCardStatus="Draft")
    report = h.put_json(s3, "churn/evaluation.json", h.BINARY_REPORT)
    arn = h.create_package(sm, "churn", status="Approved", report_uri=report)
    sm.create_model(
        ModelName="churn-v1", PrimaryContainer={"ModelPackageName": arn}, ExecutionRoleArn="arn:aws:iam::1:role/x"
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "churn-v1", "InitialInstanceCount": 1}
    variant["InstanceType"] = "ml.m5.large"
    sm.create_endpoint_config(EndpointConfigName="churn-cfg", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName="churn-prod", EndpointConfigName="churn-cfg")

    call_command("add_registry_source", "prod", "--region", h.REGION)
    call_command("sync_registry")

    package = ModelPackage.objects.get(arn=arn)
    assert package.reports.get().status == "ok"
    assert package.model_card == ModelCard.objects.get(name="churn")
    assert Endpoint.objects.get(name="churn-prod").variants.get().package == package
    run = SyncRun.objects.get()
    assert (run.mode, run.counts["first_sync"]) == (SyncRun.Mode.FULL, 1)
    source = RegistrySource.objects.get(name="prod")
    assert source.first_synced_at is not None and source.search_watermark is not None

    call_command("sync_registry")
    assert SyncRun.objects.order_by("-pk").first().mode == SyncRun.Mode.INCREMENTAL


def test_a_failed_first_sync_leaves_the_next_one_full(registry, source, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def down(self, **kwargs):  # type: ignore[no-untyped-def]
        raise AccessDeniedError("ListModelPackageGroups: AccessDeniedException")
        yield  # pragma: no cover

    monkeypatch.setattr(RegistryClient, "iter_group_pages", down)
    assert sync_source(source, mode=SyncRun.Mode.INCREMENTAL).status == SyncRun.Status.FAILED
    assert fresh(source).first_synced_at is None
    monkeypatch.undo()
    run = sync_source(source, mode=SyncRun.Mode.ENDPOINTS)
    assert run.mode == SyncRun.Mode.FULL and run.status == SyncRun.Status.SUCCEEDED
    assert fresh(source).first_synced_at is not None
    assert timezone.now() - fresh(source).search_watermark < dt.timedelta(minutes=1)
