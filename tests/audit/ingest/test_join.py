"""The join: events land on the right package, group, card or endpoint, and on the right dashboard user."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from registry_app.audit.ingest_linker import Linker, relink_events
from registry_app.audit.ingest_writer import StoreStats, store_records
from registry_app.models import CloudTrailEvent, ModelPackage, RegistrySource
from tests.audit.ingest import records as r
from tests.factories import (
    ModelCardFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    RegistrySourceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def source() -> RegistrySource:
    return RegistrySourceFactory(name="prod", region=r.REGION, account_id=r.ACCOUNT)


@pytest.fixture
def package(source: RegistrySource) -> ModelPackage:
    group = ModelPackageGroupFactory(source=source, name="credit-risk")
    return ModelPackageFactory(group=group, version=7)


def store(source: RegistrySource, recs: list[dict[str, Any]]) -> StoreStats:
    return store_records(source, recs, via=CloudTrailEvent.Via.S3, linker=Linker(source), fallback_time=timezone.now())


def get(rec: dict[str, Any]) -> CloudTrailEvent:
    return CloudTrailEvent.objects.select_related("package", "group", "user").get(event_id=rec["eventID"])


def test_package_events_by_full_arn_and_group_version(source: RegistrySource, package: ModelPackage) -> None:
    created = r.create_package("credit-risk", 7)
    approved = r.approve("credit-risk", 7)
    deleted = r.record("DeleteModelPackage", {"modelPackageName": "credit-risk/7"})
    store(source, [created, approved, deleted])
    for rec in (created, approved, deleted):
        event = get(rec)
        assert event.package == package and event.group == package.group
        assert (event.resource_type, event.resource_name) == ("package", package.arn)


def test_pascal_case_and_upper_case_arns_are_looked_up_case_insensitively(
    source: RegistrySource, package: ModelPackage
) -> None:
    pascal = r.record("UpdateModelPackage", {"ModelPackageArn": package.arn, "ModelApprovalStatus": "Rejected"})
    shouting = r.record("UpdateModelPackage", {"modelPackageArn": package.arn.replace("credit-risk", "CREDIT-RISK")})
    store(source, [pascal, shouting])
    assert get(pascal).package == package
    assert get(shouting).package == package


def test_group_card_model_config_and_endpoint_events(source: RegistrySource, package: ModelPackage) -> None:
    card = ModelCardFactory(source=source, name="credit-risk-v7")
    package.model_card = card
    package.save()
    group_event = r.create_group("credit-risk")
    policy = r.record("PutModelPackageGroupPolicy", {"ModelPackageGroupName": r.arn_group("credit-risk")})
    card_event = r.record("UpdateModelCard", {"modelCardName": "Credit-Risk-V7", "modelCardStatus": "Approved"})
    model = r.create_model("credit-risk-v7", "credit-risk/7")
    config = r.create_config("cfg-7", [("AllTraffic", "credit-risk-v7", 1.0)])
    endpoint = r.endpoint_call("CreateEndpoint", "Credit-Prod", "cfg-7")
    store(source, [group_event, policy, card_event, model, config, endpoint])

    assert get(group_event).group == package.group and get(group_event).package is None
    assert get(policy).group == package.group
    event = get(card_event)
    assert (event.resource_type, event.resource_name) == ("card", "Credit-Risk-V7")
    assert event.package == package  # the one package that names this card
    event = get(model)
    assert (event.resource_type, event.resource_name, event.package) == ("model", "credit-risk-v7", package)
    event = get(config)
    assert (event.resource_type, event.resource_name, event.package) == ("endpoint_config", "cfg-7", None)
    event = get(endpoint)
    assert (event.resource_type, event.endpoint_name, event.resource_name) == ("endpoint", "Credit-Prod", "Credit-Prod")


def test_unknown_resources_are_kept_unlinked(source: RegistrySource, package: ModelPackage) -> None:
    other = r.approve("not-mirrored", 1)
    odd = r.record("CreateModelCardExportJob", {"modelCardName": "x"})
    no_params = r.record("UpdateModelPackage", None, None)
    stats = store(source, [other, odd, no_params])
    assert stats.inserted == 3
    event = get(other)
    assert event.package is None and event.group is None
    assert (event.resource_type, event.resource_name) == ("package", r.arn_package("not-mirrored", 1))
    assert get(odd).resource_type == "" and get(odd).event_name == "CreateModelCardExportJob"
    assert get(no_params).resource_type == "" and get(no_params).package is None


def test_cross_account_package_arn_links_to_the_shared_package(source: RegistrySource) -> None:
    owner = RegistrySourceFactory(name="owner", account_id="444455556666")
    group = ModelPackageGroupFactory(source=owner, name="shared")
    shared = ModelPackageFactory(group=group, version=2, arn=r.arn_package("shared", 2, account="444455556666"))
    rec = r.approve("shared", 2) | {
        "requestParameters": {"modelPackageArn": shared.arn, "modelApprovalStatus": "Approved"},
        "responseElements": {"modelPackageArn": shared.arn},
    }
    store(source, [rec])
    assert get(rec).package == shared


def test_users_are_linked_by_source_identity_session_and_user_name(source: RegistrySource) -> None:
    mlead, fairness, compliance, alice = (UserFactory(username=n) for n in ("mlead", "fairness", "compliance", "Alice"))
    recs = {
        "studio": r.approve("g", 1, identity=r.studio_user("MLead")),
        "sso": r.approve("g", 2, identity=r.sso_user("fairness")),
        "idc": r.approve("g", 3, identity=r.identity_center_user(user_name="COMPLIANCE")),
        "iam": r.approve("g", 4, identity=r.iam_user("alice")),
        "generic": r.approve("g", 5, identity=r.assumed_role("PipelineRole", "SageMaker")),
        "nobody": r.approve("g", 6, identity=r.studio_user("ghost")),
        "service": r.approve("g", 7, identity=r.aws_service()),
    }
    store(source, list(recs.values()))
    assert get(recs["studio"]).user == mlead and get(recs["studio"]).actor_name == "MLead"
    assert get(recs["sso"]).user == fairness
    assert get(recs["idc"]).user == compliance
    assert get(recs["iam"]).user == alice
    assert get(recs["generic"]).user is None and get(recs["generic"]).actor_name == "PipelineRole/SageMaker"
    assert get(recs["nobody"]).user is None and get(recs["nobody"]).actor_name == "ghost"
    assert get(recs["service"]).user is None and get(recs["service"]).actor_name == "sagemaker.amazonaws.com"
    assert get(recs["studio"]).actor_arn.endswith("assumed-role/AmazonSageMaker-ExecutionRole-Risk/SageMaker")


def test_events_stored_before_the_mirror_knew_the_package_are_relinked(source: RegistrySource) -> None:
    early = r.create_package("late-group", 1)
    group_event = r.create_group("late-group")
    store(source, [early, group_event])
    assert get(early).package is None and get(group_event).group is None
    group = ModelPackageGroupFactory(source=source, name="late-group")
    package = ModelPackageFactory(group=group, version=1)

    assert relink_events(source) == 2
    assert get(early).package == package and get(early).group == group
    assert get(group_event).group == group
    assert relink_events(source) == 0


def test_store_counts_and_touched_resources(source: RegistrySource) -> None:
    recs = [
        r.create_model("m1", "g/1"),
        r.create_config("c1", [("A", "m1", 1.0)]),
        r.endpoint_call("UpdateEndpoint", "prod-ep", "c1"),
        r.endpoint_call("UpdateEndpoint", "failed-ep", "c1", error_code="ValidationException"),
        r.describe(),
    ]
    stats = store(source, recs)
    assert (stats.relevant, stats.inserted, stats.duplicates) == (4, 4, 0)
    assert stats.endpoints == {"prod-ep"} and stats.configs == {"c1"} and stats.models == {"m1"}
    again = store(source, recs)
    assert (again.inserted, again.duplicates) == (0, 4)


def test_batches_insert_with_a_constant_number_of_queries(
    source: RegistrySource, settings: Any, django_assert_max_num_queries: Any
) -> None:
    settings.AUDIT_BATCH_SIZE = 100
    when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    recs = [r.approve("g", i, when=when, identity=r.studio_user(f"user{i % 7}")) for i in range(1, 501)]
    # Mirror index (4) + per batch of 100: existing ids, users, insert (SQLite may split the insert).
    with django_assert_max_num_queries(4 + 5 * 6):
        stats = store(source, recs)
    assert stats.inserted == 500


def test_postgres_copy_falls_back_to_on_conflict_when_an_id_appears_meanwhile(source: RegistrySource) -> None:
    """Two rows with one id stand for a concurrent ingest storing it between the look-up and the COPY."""
    from django.db import connection

    from registry_app.audit import ingest_writer
    from registry_app.audit.events import prepare_records

    if connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    rec = r.approve("g", 1)
    _, (event,) = prepare_records([rec], fallback_time=timezone.now())
    row = ingest_writer._values(source.pk, "s3", event, Linker(source), timezone.now())
    inserted = ingest_writer._copy_rows(connection, [list(row), list(row)])
    assert inserted == {rec["eventID"]}
    assert CloudTrailEvent.objects.filter(event_id=rec["eventID"]).count() == 1
    assert ingest_writer._copy_rows(connection, [list(row)]) == set()


def test_relink_since_targets_packages_first_seen_since(source: RegistrySource) -> None:
    before = timezone.now() - dt.timedelta(minutes=1)
    early = r.approve("new-group", 3)
    by_name = r.record("DeleteModelPackage", {"modelPackageName": "new-group/3"})
    store(source, [early, by_name, r.create_group("new-group")])
    group = ModelPackageGroupFactory(source=source, name="new-group")
    package = ModelPackageFactory(group=group, version=3)

    assert relink_events(source, since=before) == 3
    assert get(early).package == package and get(by_name).package == package
    assert relink_events(source, since=timezone.now()) == 0
