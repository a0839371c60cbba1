"""The provenance pages from mirrored rows: the review page's Provenance section (job, hyperparameters,
channels, differences from the approved version, lineage SVG), ``/lineage/`` impact analysis and its
CSV, strict parameters, and the endpoint page's rollback plan."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registry_app.audit.rollback import resource_name
from registry_app.models import (
    EndpointDeployment,
    JobData,
    LineageEdge,
    LineageEntity,
    ModelPackage,
    PackageLineage,
    PackageTraining,
    RegistrySource,
    TrainingJob,
)
from registry_app.models.registry import ApprovalStatus
from tests.factories import EndpointFactory, EndpointVariantFactory, ModelPackageFactory, ModelPackageGroupFactory

pytestmark = pytest.mark.django_db
SHARED = "s3://acme-data/shared/transactions/2025-01/"
XSS = '<script>alert("x")</script>'


def trained(
    package: ModelPackage,
    job: str,
    *,
    hyper: dict[str, str],
    channels: dict[str, str],
    vertices: int = 0,
    **fields: Any,
) -> TrainingJob:
    """The rows a sync leaves for a package trained by ``job`` (with ``vertices`` extra lineage data sets)."""
    source = package.source
    row, _ = TrainingJob.objects.get_or_create(
        source=source,
        name=job,
        defaults={
            "status": "Completed",
            "hyperparameters": hyper,
            "training_image": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/xgb@sha256:" + "ab" * 32,
            "image_digest": "sha256:" + "ab" * 32,
            "instance_type": "ml.m5.xlarge",
            "instance_count": 2,
            "network_isolation": True,
            "inter_container_encryption": False,
            "role_arn": "arn:aws:iam::111122223333:role/Exec",
            "duration_s": 2520,
            **fields,
        },
    )
    for name, uri in channels.items():
        JobData.objects.get_or_create(training_job=row, direction="input", name=name, s3_uri=uri)
    root = LineageEntity.objects.create(
        source=source,
        arn=f"arn:aws:sagemaker:eu-west-1:111122223333:artifact/p{package.pk}",
        lineage_type="Artifact",
        entity_type="ModelPackage",
        source_uri=package.arn,
    )
    component, _ = LineageEntity.objects.get_or_create(
        source=source,
        arn=f"arn:aws:sagemaker:eu-west-1:111122223333:experiment-trial-component/{job}-aws-training-job",
        defaults={
            "lineage_type": "TrialComponent",
            "entity_type": "TrainingJob",
            "job_kind": "training",
            "job_name": job,
            "training_job": row,
        },
    )
    LineageEdge.objects.get_or_create(source_entity=component, destination_entity=root, association_type="Produced")
    PackageLineage.objects.create(package=package, entity=root, relation="self", depth=0)
    PackageLineage.objects.create(package=package, entity=component, relation="ancestor", depth=1)
    for index, uri in enumerate([*channels.values(), *(f"s3://acme-data/extra/{i}/" for i in range(vertices))]):
        data, _ = LineageEntity.objects.get_or_create(
            source=source,
            arn=f"arn:aws:sagemaker:eu-west-1:111122223333:artifact/d{abs(hash(uri)) % 10**9}",
            defaults={"lineage_type": "Artifact", "entity_type": "DataSet", "source_uri": uri},
        )
        LineageEdge.objects.get_or_create(
            source_entity=data, destination_entity=component, association_type="ContributedTo"
        )
        PackageLineage.objects.get_or_create(
            package=package, entity=data, defaults={"relation": "ancestor", "depth": 2 + index}
        )
    PackageTraining.objects.create(
        package=package,
        training_job=row,
        job_name=job,
        resolved_from="lineage",
        lineage_root=root,
        lineage_status="walked",
        checked_at=timezone.now(),
        training_data_version=f"v-{package.version}",
    )
    return row


@pytest.fixture
def group(registry_source: RegistrySource) -> Any:
    group = ModelPackageGroupFactory(source=registry_source, name="credit-risk")
    approved = ModelPackageFactory(group=group, version=1, approval_status=ApprovalStatus.APPROVED)
    pending = ModelPackageFactory(group=group, version=2)
    trained(
        approved,
        "credit-v1",
        hyper={"eta": "0.1", "max_depth": "6"},
        channels={"train": "s3://acme-data/credit/1/", "tx": SHARED},
    )
    trained(
        pending,
        "credit-v2",
        hyper={"eta": "0.05", "max_depth": "6", "note": XSS},
        channels={"train": "s3://acme-data/credit/2/", "tx": SHARED},
    )
    return group


def review(client: Client, group_name: str, version: int) -> str:
    response = client.get(reverse("registry:package_detail", args=[group_name, version]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_review_page_shows_the_training_and_its_differences_from_the_approved_version(
    reviewer_client: Client, group: Any
) -> None:
    page = review(reviewer_client, "credit-risk", 2)

    assert 'id="provenance"' in page and "credit-v2" in page
    assert 'id="hyperparameters"' in page and "0.05" in page
    assert XSS not in page and "&lt;script&gt;" in page  # registry text is escaped, in tables and SVG alike
    assert 'id="training-diff"' in page and "Against v1" in page
    assert "s3://acme-data/credit/1/" in page and "s3://acme-data/credit/2/" in page
    assert "v-1" in page and "v-2" in page  # the training data version changed too
    assert "sha256:" + "ab" * 32 in page
    assert '<svg class="lineage-graph"' in page and "lineage-training" in page
    assert reverse("registry:lineage") + "?data=s3%3A%2F%2Facme-data%2Fshared%2Ftransactions%2F2025-01%2F" in page


def test_a_version_never_checked_or_with_a_gone_job_says_so(reviewer_client: Client, group: Any) -> None:
    unchecked = ModelPackageFactory(group=group, version=3)
    gone = ModelPackageFactory(group=group, version=4)
    job = TrainingJob.objects.create(
        source=gone.source,
        name="credit-v4",
        missing=True,
        error="DescribeTrainingJob: ValidationException: Requested resource not found.",
    )
    PackageTraining.objects.create(
        package=gone, training_job=job, job_name="credit-v4", resolved_from="generated_by", checked_at=timezone.now()
    )

    assert "Not checked yet" in review(reviewer_client, "credit-risk", unchecked.version)
    page = review(reviewer_client, "credit-risk", gone.version)
    assert "Training job credit-v4 no longer exists in SageMaker" in page and "Requested resource not found" in page


def test_the_provenance_section_costs_the_same_queries_however_large_the_graph(
    reviewer_client: Client, registry_source: RegistrySource
) -> None:
    group = ModelPackageGroupFactory(source=registry_source, name="big")
    small = ModelPackageFactory(group=group, version=1)
    large = ModelPackageFactory(group=group, version=2)
    trained(small, "big-v1", hyper={"a": "1"}, channels={"train": "s3://d/1/"})
    trained(
        large,
        "big-v2",
        hyper={f"h{i}": str(i) for i in range(40)},
        channels={f"c{i}": f"s3://d/2/{i}/" for i in range(12)},
        vertices=60,
    )

    def count(version: int) -> int:
        with CaptureQueriesContext(connection) as ctx:
            review(reviewer_client, "big", version)
        return len(ctx.captured_queries)

    assert count(1) == count(2)


def test_impact_analysis_lists_the_packages_trained_on_a_prefix_with_their_endpoints(
    reviewer_client: Client, group: Any
) -> None:
    v1 = ModelPackage.objects.get(group=group, version=1)
    EndpointVariantFactory(
        endpoint=EndpointFactory(source=group.source, name="credit-prod"), package=v1, variant_name="AllTraffic"
    )
    other = ModelPackageGroupFactory(source=group.source, name="churn")
    trained(ModelPackageFactory(group=other, version=1), "churn-v1", hyper={}, channels={"tx": SHARED})

    page = reviewer_client.get(reverse("registry:lineage"), {"data": "s3://acme-data/shared/"}).content.decode()

    assert "3 packages trained on or evaluated with" in page
    for label in ("credit-risk v1", "credit-risk v2", "churn v1", "credit-prod"):
        assert label in page
    # A location inside a channel's prefix finds that channel too.
    inside = reviewer_client.get(reverse("registry:lineage"), {"data": SHARED + "part-0001.csv"}).content.decode()
    assert "3 packages" in inside


def test_impact_analysis_by_job_and_by_artifact(reviewer_client: Client, group: Any) -> None:
    by_job = reviewer_client.get(reverse("registry:lineage"), {"job": "credit-v2"}).content.decode()
    component = LineageEntity.objects.get(job_name="credit-v1")
    artifact = LineageEntity.objects.get(source_uri=SHARED)
    by_artifact = reviewer_client.get(reverse("registry:lineage"), {"artifact": artifact.arn}).content.decode()
    by_arn = reviewer_client.get(
        reverse("registry:lineage"), {"job": "arn:aws:sagemaker:eu-west-1:111122223333:training-job/credit-v1"}
    ).content.decode()

    assert "1 package from job" in by_job and "credit-risk v2" in by_job and "credit-risk v1" not in by_job
    assert "2 packages downstream of" in by_artifact
    assert "credit-risk v1" in by_arn and component.training_job is not None


def test_the_csv_export_lists_the_same_rows_with_formula_safe_cells(reviewer_client: Client, group: Any) -> None:
    response = reviewer_client.get(reverse("registry:lineage"), {"data": SHARED, "format": "csv"})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["group"], r["version"], r["approval_status"], r["trained_on_it"]) for r in rows] == [
        ("credit-risk", "2", "PendingManualApproval", "yes"),
        ("credit-risk", "1", "Approved", "yes"),
    ]
    assert "credit-v1" in rows[1]["how"]


@pytest.mark.parametrize(
    "params",
    [
        {"data": "s3://a/", "job": "credit-v1"},
        {"data": "https://acme-data/shared/"},
        {"data": "s3://Bad_Bucket/x"},
        {"data": "s3://acme-data/\x00"},
        {"artifact": "arn:aws:sagemaker:eu-west-1:111122223333:model-package/x/1"},
        {"job": "not a job!"},
        {"format": "csv"},
        {"format": "xlsx", "job": "credit-v1"},
    ],
)
def test_malformed_questions_are_refused_with_400(reviewer_client: Client, params: dict[str, str]) -> None:
    assert reviewer_client.get(reverse("registry:lineage"), params).status_code == 400


def test_the_impact_page_needs_a_login(client: Client) -> None:
    response = client.get(reverse("registry:lineage"), {"data": SHARED})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_endpoint_page_shows_the_rollback_plan_to_the_version_that_served_before(
    reviewer_client: Client, registry_source: RegistrySource
) -> None:
    group = ModelPackageGroupFactory(source=registry_source, name="fraud")
    v1, v2, v3 = (
        ModelPackageFactory(group=group, version=v, approval_status=ApprovalStatus.APPROVED) for v in (1, 2, 3)
    )
    endpoint = EndpointFactory(source=registry_source, name="fraud-live")
    EndpointVariantFactory(endpoint=endpoint, package=v3, variant_name="Champion", model_name="fraud-v3", weight=0.9)
    EndpointVariantFactory(endpoint=endpoint, package=v2, variant_name="Challenger", model_name="fraud-v2", weight=0.1)
    now = timezone.now()
    for package, start, end in ((v1, 30, 10), (v3, 10, None)):
        EndpointDeployment.objects.create(
            source=registry_source,
            endpoint_name="fraud-live",
            variant_name="Champion",
            model_name=f"fraud-v{package.version}",
            package_arn=package.arn,
            package=package,
            weight=0.9,
            started_at=now - dt.timedelta(days=start),
            ended_at=now - dt.timedelta(days=end) if end else None,
        )

    page = reviewer_client.get(reverse("registry:endpoint_detail", args=["fraud-live"])).content.decode()

    assert 'id="rollback-plan"' in page and "Roll back to" in page
    plan = page[page.index('id="rollback-plan"') :]
    assert "fraud v1" in plan[: plan.index("Its evidence now")]  # the version that served before, not v2
    assert "aws sagemaker create-model" in plan and "ModelPackageName" in plan and v1.arn in plan
    assert "aws sagemaker create-endpoint-config" in plan and "Challenger" in plan and "fraud-v2" in plan
    assert "aws sagemaker update-endpoint --endpoint-name fraud-live" in plan
    assert "not deployable" in plan or "deployable" in plan


def test_rollback_resource_names_follow_sagemaker_rules() -> None:
    assert resource_name("a_very/odd name", "rollback", "202501011200") == "a-very-odd-name-rollback-202501011200"
    assert len(resource_name("x" * 80, "rollback")) == 63
