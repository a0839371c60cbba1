"""One resolution of a Model's ``ModelPackageName`` (issue 9 item 8): ``group/version``, a bare name or an
ARN in any case, shared by the endpoint sync and the deployment history, so the two never disagree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.utils import timezone

from registry_app.audit.deployments import rebuild_endpoint
from registry_app.audit.ingest_linker import Linker
from registry_app.audit.ingest_writer import store_records
from registry_app.mirror.execute import sync_source
from registry_app.models import CloudTrailEvent, Endpoint, EndpointDeployment, ModelPackage, SyncRun
from tests import aws_helpers as h
from tests.audit.ingest import records as r

ACCOUNT = "123456789012"  # the fake's
PREFIX = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package"


@pytest.mark.parametrize(
    ("written", "arn", "group", "version"),
    [
        ("FraudModel/3", f"{PREFIX}/fraudmodel/3", "FraudModel", 3),
        (f"{PREFIX}/fraudmodel/3", f"{PREFIX}/fraudmodel/3", "fraudmodel", 3),
        (f"ARN:aws:SageMaker:eu-west-1:{ACCOUNT}:Model-Package/FraudModel/3", None, "FraudModel", 3),
        ("fraud-unversioned", f"{PREFIX}/fraud-unversioned", "", None),
        (f"{PREFIX}/fraud-unversioned", f"{PREFIX}/fraud-unversioned", "", None),
    ],
)
def test_references_parse_to_one_key(written: str, arn: str | None, group: str, version: int | None) -> None:
    from registry_app.mirror.package_refs import package_index, package_ref, resolve_package

    ref = package_ref(written, region="eu-west-1", account=ACCOUNT)
    assert (ref.arn, ref.group, ref.version) == (arn or written, group, version)
    assert ref.key == (arn or written).lower()
    index = package_index([(7, f"{PREFIX}/fraudmodel/3")])
    expected = 7 if version == 3 else None
    assert resolve_package(written, index, region="eu-west-1", account=ACCOUNT).package_id == expected


def test_what_does_not_name_a_package_resolves_to_nothing() -> None:
    from registry_app.mirror.package_refs import PackageRef, lookup_arns, package_index, package_ref, resolve_package

    index = package_index([(7, f"{PREFIX}/fraudmodel/3")])
    for value in ("", None, {"a": 1}, "a/b/3", f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model/fraudmodel-3"):
        found = resolve_package(value, index, region="eu-west-1", account=ACCOUNT)
        assert found.package_id is None
    assert package_ref("FraudModel/3") == PackageRef("FraudModel/3", "", "FraudModel", 3)  # no region/account
    assert resolve_package("FraudModel/3", index).arn == "FraudModel/3"  # shown as written
    assert lookup_arns([package_ref("X/1", region="us-gov-west-1", account="1")]) == [
        "arn:aws-us-gov:sagemaker:us-gov-west-1:1:model-package/x/1"
    ]


REFERENCES = {  # variant -> (model, how the model names its package)
    "GroupVersion": ("fraud-v3", "FraudModel/3"),
    "MixedCaseArn": ("fraud-v2", f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/FraudModel/2"),
    "BareName": ("fraud-unversioned", "fraud-unversioned"),
}


@pytest.fixture
def deployed(aws, source) -> dict[str, tuple[int | None, str]]:  # type: ignore[no-untyped-def]
    """Three variants whose models name their package each way; the mirror synced, the CloudTrail chain
    stored. Returns what each variant serves: (package id, ARN)."""
    sm, _ = h.clients()
    h.create_group(sm, "FraudModel")
    arns = [h.create_package(sm, "FraudModel", status="Approved") for _ in range(3)]
    for model, reference in REFERENCES.values():
        container: dict[str, Any] = {"ModelPackageName": reference}
        sm.create_model(ModelName=model, PrimaryContainer=container, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/x")
    variants = [
        {"VariantName": variant, "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        for variant, (model, _) in REFERENCES.items()
    ]
    sm.create_endpoint_config(EndpointConfigName="fraud-cfg", ProductionVariants=variants)
    sm.create_endpoint(EndpointName="fraud-prod", EndpointConfigName="fraud-cfg")
    assert sync_source(source, mode=SyncRun.Mode.FULL).status == SyncRun.Status.SUCCEEDED
    source.refresh_from_db()
    # The same chain as CloudTrail recorded it.
    when = timezone.now() - timezone.timedelta(hours=1)
    events = [r.create_model(model, reference, when=when, account=ACCOUNT) for model, reference in REFERENCES.values()]
    config = [(variant, model, 1.0) for variant, (model, _) in REFERENCES.items()]
    events.append(r.create_config("fraud-cfg", config, when=when, account=ACCOUNT))
    events.append(r.endpoint_call("CreateEndpoint", "fraud-prod", "fraud-cfg", when=when, account=ACCOUNT))
    store_records(source, events, via=CloudTrailEvent.Via.S3, linker=Linker(source), fallback_time=timezone.now())
    package = {p.version: p for p in ModelPackage.objects.all()}
    return {
        "GroupVersion": (package[3].pk, arns[2]),
        "MixedCaseArn": (package[2].pk, arns[1]),
        "BareName": (None, f"{PREFIX}/fraud-unversioned"),
    }


@pytest.mark.django_db
def test_the_endpoint_sync_resolves_each_reference(deployed) -> None:  # type: ignore[no-untyped-def]
    mirrored = {v.variant_name: (v.package_id, v.package_arn) for v in Endpoint.objects.get().variants.all()}
    assert mirrored == deployed, json.dumps(mirrored, default=str)


@pytest.mark.django_db
def test_the_deployment_history_resolves_each_reference_as_the_sync_does(deployed, source) -> None:  # type: ignore[no-untyped-def]
    rebuild_endpoint(source, "fraud-prod")
    history = {d.variant_name: (d.package_id, d.package_arn) for d in EndpointDeployment.objects.all()}
    assert history == deployed, json.dumps(history, default=str)
