"""Deployment history from the CloudTrail chain and the mirror: windows, evidence, missing links."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from registry_app.audit.deployments import deployments_at, rebuild_deployments, rebuild_endpoint
from registry_app.audit.ingest import ingest_source
from registry_app.audit.ingest_linker import Linker
from registry_app.audit.ingest_writer import store_records
from registry_app.models import CloudTrailEvent, EndpointDeployment, ModelPackage, RegistrySource
from tests.audit.ingest import records as r
from tests.audit.ingest.conftest import Trail
from tests.factories import (
    EndpointFactory,
    EndpointVariantFactory,
    ModelPackageFactory,
    ModelPackageGroupFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 1, 10, 10, 0, tzinfo=dt.UTC)
T1 = dt.datetime(2025, 2, 1, 9, 0, tzinfo=dt.UTC)
T2 = dt.datetime(2025, 2, 5, 14, 0, tzinfo=dt.UTC)
T3 = dt.datetime(2025, 2, 20, 8, 30, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


@pytest.fixture
def source() -> RegistrySource:
    return RegistrySourceFactory(
        name="prod", region=r.REGION, account_id=r.ACCOUNT, cloudtrail_bucket="acme-cloudtrail"
    )


@pytest.fixture
def versions(source: RegistrySource) -> tuple[ModelPackage, ModelPackage]:
    group = ModelPackageGroupFactory(source=source, name="credit-risk")
    return ModelPackageFactory(group=group, version=1), ModelPackageFactory(group=group, version=2)


def history(*, with_first_model: bool = True) -> list[dict[str, Any]]:
    """Deploy v1, approve v2, update the endpoint to v2, roll back to v1."""
    deployer = r.sso_user("mlead", "MLPlatformDeployer")
    recs = [
        r.create_config("cfg-v1", [("AllTraffic", "credit-risk-v1", 1.0)], when=T0 + MIN, identity=deployer),
        r.endpoint_call("CreateEndpoint", "credit-prod", "cfg-v1", when=T0 + 2 * MIN, identity=deployer),
        r.approve("credit-risk", 2, when=T1, identity=r.studio_user("compliance")),
        r.create_model("credit-risk-v2", "credit-risk/2", when=T2, identity=deployer),
        r.create_config("cfg-v2", [("AllTraffic", "credit-risk-v2", 1.0)], when=T2 + MIN, identity=deployer),
        r.endpoint_call("UpdateEndpoint", "credit-prod", "cfg-v2", when=T2 + 2 * MIN, identity=deployer),
        r.endpoint_call("UpdateEndpoint", "credit-prod", "cfg-v1", when=T3, identity=deployer),  # rollback
    ]
    if with_first_model:
        recs.insert(0, r.create_model("credit-risk-v1", r.arn_package("credit-risk", 1), when=T0, identity=deployer))
    return recs


def store(source: RegistrySource, recs: list[dict[str, Any]]) -> None:
    store_records(source, recs, via=CloudTrailEvent.Via.S3, linker=Linker(source), fallback_time=timezone.now())


def windows(name: str = "credit-prod") -> list[tuple[str, int | None, dt.datetime, dt.datetime | None]]:
    rows = EndpointDeployment.objects.filter(endpoint_name=name).select_related("package").order_by("started_at")
    return [
        (row.variant_name, row.package.version if row.package else None, row.started_at, row.ended_at) for row in rows
    ]


def test_deploy_update_and_rollback_produce_three_windows(
    source: RegistrySource, versions: tuple[ModelPackage, ModelPackage]
) -> None:
    v1, v2 = versions
    recs = history()
    store(source, recs)

    assert rebuild_endpoint(source, "credit-prod") == 3

    assert windows() == [
        ("AllTraffic", 1, T0 + 2 * MIN, T2 + 2 * MIN),
        ("AllTraffic", 2, T2 + 2 * MIN, T3),
        ("AllTraffic", 1, T3, None),
    ]
    first, second, third = EndpointDeployment.objects.order_by("started_at")
    assert first.evidence["events"] == {
        "endpoint": recs[2]["eventID"],
        "config": recs[1]["eventID"],
        "model": recs[0]["eventID"],
    }
    assert first.evidence["ended_by"] == recs[6]["eventID"] and first.evidence["source"] == "cloudtrail"
    assert second.evidence["events"]["model"] == recs[4]["eventID"]  # CreateModel by "credit-risk/2"
    assert second.package_arn == v2.arn and second.config_name == "cfg-v2" and second.model_name == "credit-risk-v2"
    assert third.evidence["events"]["endpoint"] == recs[7]["eventID"] and "missing" not in third.evidence
    assert third.package == v1 and third.weight == 1.0 and third.source == source

    assert [d.package for d in deployments_at("credit-prod", T0 + MIN)] == []
    assert [d.package for d in deployments_at("credit-prod", T1)] == [v1]
    assert [d.package for d in deployments_at("CREDIT-PROD", T2 + 3 * MIN)] == [v2]
    assert [d.package for d in deployments_at("credit-prod", T3)] == [v1]
    assert [d.package for d in deployments_at("credit-prod", timezone.now())] == [v1]


def test_rebuild_is_idempotent_and_replaces_rows(source: RegistrySource, versions: Any) -> None:
    store(source, history())
    rebuild_endpoint(source, "credit-prod")
    rebuild_endpoint(source, "credit-prod")
    assert EndpointDeployment.objects.count() == 3


def test_a_missing_create_model_is_recorded_not_guessed(source: RegistrySource, versions: Any) -> None:
    store(source, history(with_first_model=False))
    rebuild_endpoint(source, "credit-prod")
    first = EndpointDeployment.objects.order_by("started_at").first()
    assert first is not None
    assert first.package is None and first.package_arn == "" and first.model_name == "credit-risk-v1"
    assert first.evidence["missing"] == [
        "CreateModel credit-risk-v1: not in the ingested CloudTrail (older than its retention, or not ingested yet)"
    ]
    assert windows()[1:] == [("AllTraffic", 2, T2 + 2 * MIN, T3), ("AllTraffic", None, T3, None)]


def test_the_mirror_fills_a_missing_link_and_says_so(source: RegistrySource, versions: Any) -> None:
    v1, _ = versions
    endpoint = EndpointFactory(source=source, name="credit-prod", config_name="cfg-v1", last_modified_at=T3 + MIN)
    EndpointVariantFactory(endpoint=endpoint, variant_name="AllTraffic", model_name="credit-risk-v1", package=v1)
    store(source, history(with_first_model=False))
    rebuild_endpoint(source, "credit-prod")
    rows = list(EndpointDeployment.objects.order_by("started_at"))
    assert [row.package for row in rows] == [v1, versions[1], v1]
    assert rows[0].evidence["mirror"]["package_arn"] == v1.arn
    assert any("CreateModel credit-risk-v1" in m for m in rows[0].evidence["missing"])
    assert "mirror_disagrees" not in rows[2].evidence


def test_mirror_only_endpoint(source: RegistrySource, versions: Any) -> None:
    v1, _ = versions
    since = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    endpoint = EndpointFactory(source=source, name="legacy-ep", config_name="legacy-cfg", last_modified_at=since)
    EndpointVariantFactory(
        endpoint=endpoint, variant_name="AllTraffic", model_name="legacy-model", package=v1, weight=1
    )

    result = rebuild_deployments("legacy-ep")

    assert result.endpoints == ["legacy-ep"] and result.rows == 1
    (row,) = EndpointDeployment.objects.all()
    assert (row.package, row.started_at, row.ended_at, row.config_name) == (v1, since, None, "legacy-cfg")
    assert row.evidence["source"] == "mirror"
    assert row.evidence["mirror"]["endpoint_last_modified"] == since.isoformat()
    assert "CreateEndpoint/UpdateEndpoint to legacy-cfg" in row.evidence["missing"][0]


def test_the_mirror_showing_a_later_config_closes_the_cloudtrail_window(source: RegistrySource, versions: Any) -> None:
    v1, v2 = versions
    store(source, history()[:3])  # CloudTrail knows only the first deployment so far
    later = T2 + 10 * MIN
    endpoint = EndpointFactory(source=source, name="credit-prod", config_name="cfg-v2", last_modified_at=later)
    EndpointVariantFactory(endpoint=endpoint, variant_name="AllTraffic", model_name="credit-risk-v2", package=v2)
    rebuild_endpoint(source, "credit-prod")
    assert windows() == [("AllTraffic", 1, T0 + 2 * MIN, later), ("AllTraffic", 2, later, None)]
    last = EndpointDeployment.objects.get(ended_at__isnull=True)
    assert any("UpdateEndpoint to cfg-v2" in m for m in last.evidence["missing"])


def test_mirror_disagreeing_after_an_update_is_flagged(source: RegistrySource, versions: Any) -> None:
    v1, _ = versions
    endpoint = EndpointFactory(source=source, name="credit-prod", config_name="cfg-v1", last_modified_at=T0 + 9 * MIN)
    EndpointVariantFactory(endpoint=endpoint, variant_name="AllTraffic", model_name="credit-risk-v1", package=v1)
    store(source, history()[:7])  # ... the update to v2 is the last call CloudTrail shows
    rebuild_endpoint(source, "credit-prod")
    open_row = EndpointDeployment.objects.get(ended_at__isnull=True)
    assert open_row.package_arn.endswith("/credit-risk/2")
    assert "may have failed" in open_row.evidence["mirror_disagrees"]["note"]


def test_canary_weights_and_delete(source: RegistrySource, versions: Any) -> None:
    v1, v2 = versions
    recs = [
        r.create_model("m1", v1.arn, when=T0),
        r.create_model("m2", v2.arn, when=T0),
        r.create_config("canary", [("Champion", "m1", 0.9), ("Challenger", "m2", 0.1)], when=T0 + MIN),
        r.endpoint_call("CreateEndpoint", "fraud-live", "canary", when=T0 + 2 * MIN),
        r.update_weights("fraud-live", {"Champion": 0.5, "Challenger": 0.5}, when=T1),
        r.endpoint_call("UpdateEndpoint", "fraud-live", "nope", when=T2, error_code="ValidationException"),
        r.endpoint_call("DeleteEndpoint", "fraud-live", when=T3),
    ]
    store(source, recs)
    rebuild_endpoint(source, "fraud-live")
    rows = [
        (row.variant_name, row.package.version, row.weight, row.started_at, row.ended_at)
        for row in EndpointDeployment.objects.select_related("package").order_by("started_at", "variant_name")
    ]
    assert rows == [
        ("Challenger", 2, 0.1, T0 + 2 * MIN, T1),
        ("Champion", 1, 0.9, T0 + 2 * MIN, T1),
        ("Challenger", 2, 0.5, T1, T3),
        ("Champion", 1, 0.5, T1, T3),
    ]
    last = EndpointDeployment.objects.filter(started_at=T1).first()
    assert last is not None
    assert last.evidence["events"]["weights"] == recs[4]["eventID"] and last.evidence["ended_by"] == recs[6]["eventID"]
    assert deployments_at("fraud-live", T3 + MIN) == []


def test_reused_config_name_resolves_to_the_latest_definition_before_the_deploy(
    source: RegistrySource, versions: Any
) -> None:
    v1, v2 = versions
    recs = [
        r.create_model("m1", v1.arn, when=T0),
        r.create_config("cfg", [("A", "m1", 1.0)], when=T0 + MIN),
        r.endpoint_call("CreateEndpoint", "ep", "cfg", when=T0 + 2 * MIN),
        r.record("DeleteEndpointConfig", {"endpointConfigName": "cfg"}, when=T1),
        r.record("DeleteModel", {"modelName": "m1"}, when=T1),
        r.create_model("m1", v2.arn, when=T2),
        r.create_config("cfg", [("A", "m1", 1.0)], when=T2 + MIN),
        r.endpoint_call("UpdateEndpoint", "ep", "cfg", when=T2 + 2 * MIN),
    ]
    store(source, recs)
    rebuild_endpoint(source, "ep")
    assert windows("ep") == [("A", 1, T0 + 2 * MIN, T2 + 2 * MIN), ("A", 2, T2 + 2 * MIN, None)]


def test_deployments_at_is_one_query(source: RegistrySource, versions: Any, django_assert_num_queries: Any) -> None:
    store(source, history())
    rebuild_endpoint(source, "credit-prod")
    with django_assert_num_queries(1):
        rows = deployments_at("credit-prod", T2 + 3 * MIN)
        assert rows[0].package is not None and rows[0].package.group.name == "credit-risk"


def test_ingest_rebuilds_touched_endpoints_and_late_create_model_fills_the_gap(
    source: RegistrySource, versions: Any, trail: Trail
) -> None:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    recs = history(with_first_model=False)
    trail.deliver(recs, now - dt.timedelta(days=1))
    result = ingest_source(source, lookup=False)
    assert result.deployments_rebuilt == ["credit-prod"]
    assert windows()[0][1] is None  # CreateModel of v1 not seen yet

    # A backfill brings the missing CreateModel in a later file: the endpoint using it is rebuilt.
    trail.deliver([r.create_model("credit-risk-v1", r.arn_package("credit-risk", 1), when=T0)], now, "L" * 16)
    result = ingest_source(source, lookup=False)
    assert result.deployments_rebuilt == ["credit-prod"]
    assert [w[1] for w in windows()] == [1, 2, 1]
    # Nothing new: nothing rebuilt.
    assert ingest_source(source, lookup=False).deployments_rebuilt == []


def test_rebuild_deployments_command(source: RegistrySource, versions: Any, capsys: Any) -> None:
    store(source, history())
    call_command("rebuild_deployments", "--endpoint", "Credit-Prod")
    out = capsys.readouterr().out
    assert "Rebuilt 1 endpoint(s), 3 deployment row(s)" in out
    call_command("rebuild_deployments")
    assert EndpointDeployment.objects.count() == 3
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no endpoint named"):
        call_command("rebuild_deployments", "--endpoint", "nope")
