"""Training provenance in the sync, on the AWS-faithful fake: jobs described once per distinct job and
never again once finished, lineage stored both ways, a vanished job recorded without failing the sync,
and every call counted in the run's ``aws_calls``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registry_app.devtools import aws_fake
from registry_app.mirror.execute import sync_source
from registry_app.models import (
    JobData,
    LineageEntity,
    ModelPackage,
    PackageLineage,
    PackageTraining,
    ProcessingJob,
    RegistrySource,
    SyncRun,
    TrainingJob,
)
from tests import aws_helpers as h

pytestmark = pytest.mark.django_db
ROLE = "arn:aws:iam::123456789012:role/service-role/SageMakerExecution"
IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/xgboost-training@sha256:" + "ab" * 32
T0 = dt.datetime(2025, 2, 1, 8, 0, tzinfo=dt.UTC)


def training_job(sm: Any, name: str, *, data: str, eta: str = "0.1", image: str = IMAGE) -> str:
    sm.create_training_job(
        TrainingJobName=name,
        HyperParameters={"eta": eta, "max_depth": "6"},
        AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        InputDataConfig=[
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data}}}
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{h.BUCKET}/jobs"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        EnableNetworkIsolation=True,
    )
    arn = f"arn:aws:sagemaker:{h.REGION}:123456789012:training-job/{name}"
    aws_fake.finish_training_job(
        arn, started=T0, ended=T0 + dt.timedelta(minutes=42), final_metrics=[("validation:auc", 0.91)]
    )
    return arn


def lineage_for(sm: Any, package_arn: str, job: str, data: str, *, evaluation: str = "") -> None:
    """What SageMaker records for a pipeline run: data -> training job -> model -> package (and the
    evaluation job reading the model)."""
    account_region = f"{h.REGION}:123456789012"
    component = f"arn:aws:sagemaker:{account_region}:experiment-trial-component/{job.lower()}-aws-training-job"
    dataset = _artifact(sm, data, "DataSet")
    model = _artifact(sm, f"s3://{h.BUCKET}/jobs/{job}/output/model.tar.gz", "Model")
    package = _artifact(sm, package_arn, "ModelPackage")
    sm.add_association(SourceArn=dataset, DestinationArn=component, AssociationType="ContributedTo")
    sm.add_association(SourceArn=component, DestinationArn=model, AssociationType="Produced")
    sm.add_association(SourceArn=model, DestinationArn=package, AssociationType="ContributedTo")
    if evaluation:
        tc = f"arn:aws:sagemaker:{account_region}:experiment-trial-component/{evaluation.lower()}-aws-processing-job"
        sm.add_association(SourceArn=model, DestinationArn=tc, AssociationType="ContributedTo")


def _artifact(sm: Any, uri: str, kind: str) -> str:
    found = sm.list_artifacts(SourceUri=uri)["ArtifactSummaries"]
    if found:
        return str(found[0]["ArtifactArn"])
    return str(sm.create_artifact(Source={"SourceUri": uri}, ArtifactType=kind)["ArtifactArn"])


def evaluation_job(sm: Any, name: str, model_uri: str) -> None:
    sm.create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20}
        },
        AppSpecification={"ImageUri": IMAGE},
        RoleArn=ROLE,
        ProcessingInputs=[
            {
                "InputName": "model",
                "S3Input": {
                    "S3Uri": model_uri,
                    "LocalPath": "/opt/ml/processing/model",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
            {
                "InputName": "test",
                "S3Input": {
                    "S3Uri": "s3://data/test/2025-01/",
                    "LocalPath": "/opt/ml/processing/test",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": "evaluation",
                    "S3Output": {
                        "S3Uri": f"s3://{h.BUCKET}/eval/{name}",
                        "LocalPath": "/opt/ml/processing/evaluation",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    )


@pytest.fixture
def registry(aws: None) -> dict[str, Any]:
    sm, s3 = h.clients()
    h.make_bucket(s3)
    h.create_group(sm, "credit-risk")
    v1 = h.create_package(sm, "credit-risk", status="Approved")
    v2 = h.create_package(sm, "credit-risk")
    v3 = h.create_package(sm, "credit-risk")
    training_job(sm, "credit-v1", data="s3://data/credit/2024/")
    training_job(sm, "credit-v2", data="s3://data/shared/customers/2025-01/", eta="0.05")
    lineage_for(sm, v1, "credit-v1", "s3://data/credit/2024/")
    evaluation_job(sm, "credit-v2-eval", f"s3://{h.BUCKET}/jobs/credit-v2/output/model.tar.gz")
    lineage_for(sm, v2, "credit-v2", "s3://data/shared/customers/2025-01/", evaluation="credit-v2-eval")
    # v3 was trained by the same job as v2 (registered twice): one DescribeTrainingJob for both.
    lineage_for(sm, v3, "credit-v2", "s3://data/shared/customers/2025-01/")
    return {"sm": sm, "arns": (v1, v2, v3)}


def test_a_full_sync_mirrors_each_job_once_with_its_lineage(registry: dict[str, Any]) -> None:
    source = RegistrySource.objects.create(name="prod", region=h.REGION)

    run = sync_source(source, mode=SyncRun.Mode.FULL)

    assert run.status == SyncRun.Status.SUCCEEDED, run.errors
    assert run.aws_calls["DescribeTrainingJob"] == 2  # credit-v1, credit-v2 (named by two packages)
    assert run.aws_calls["DescribeProcessingJob"] == 1
    assert run.aws_calls["ListArtifacts"] == 3  # one per package
    assert run.aws_calls["QueryLineage"] == 6  # up from each package, down from each model
    job = TrainingJob.objects.get(name="credit-v2")
    assert job.hyperparameters == {"eta": "0.05", "max_depth": "6"}
    assert job.image_digest == "sha256:" + "ab" * 32
    assert (job.instance_type, job.instance_count, job.network_isolation) == ("ml.m5.xlarge", 2, True)
    assert job.duration_s == 42 * 60 and job.final_metrics == [{"name": "validation:auc", "value": 0.91}]
    assert [(d.direction, d.name, d.s3_uri) for d in JobData.objects.filter(training_job=job)] == [
        ("input", "train", "s3://data/shared/customers/2025-01/"),
        ("output", "model", f"s3://{h.BUCKET}/jobs/credit-v2/output/model.tar.gz"),
    ]
    v1, v2, v3 = (ModelPackage.objects.get(arn=arn) for arn in registry["arns"])
    link = PackageTraining.objects.get(package=v2)
    assert (link.training_job, link.resolved_from, link.lineage_status) == (job, "lineage", "walked")
    assert PackageTraining.objects.get(package=v3).training_job == job
    # Stored both ways: the package's ancestors, and the packages an entity went into.
    dataset = LineageEntity.objects.get(source_uri="s3://data/shared/customers/2025-01/")
    assert dataset.entity_type == "DataSet" and dataset.described_at is not None
    assert set(
        PackageLineage.objects.filter(entity=dataset, relation="ancestor").values_list("package", flat=True)
    ) == {
        v2.pk,
        v3.pk,
    }
    evaluation = LineageEntity.objects.get(job_kind="processing")
    assert evaluation.processing_job == ProcessingJob.objects.get(name="credit-v2-eval")
    assert PackageLineage.objects.get(package=v2, entity=evaluation).relation == "related"
    assert JobData.objects.filter(processing_job__name="credit-v2-eval", direction="input").count() == 2


def test_a_second_sync_describes_no_finished_job_again(registry: dict[str, Any]) -> None:
    source = RegistrySource.objects.create(name="prod", region=h.REGION)
    sync_source(source, mode=SyncRun.Mode.FULL)
    h.set_status(registry["sm"], registry["arns"][2], "Approved", "approved in Studio")

    full = sync_source(source, mode=SyncRun.Mode.FULL)
    incremental = sync_source(source, mode=SyncRun.Mode.INCREMENTAL)

    for run in (full, incremental):
        assert run.status == SyncRun.Status.SUCCEEDED, run.errors
        assert not {"DescribeTrainingJob", "DescribeProcessingJob", "ListArtifacts", "QueryLineage"} & set(
            run.aws_calls
        ), run.aws_calls


def test_a_deleted_training_job_is_recorded_and_the_package_still_syncs(registry: dict[str, Any]) -> None:
    registry["sm"].delete_training_job(TrainingJobName="credit-v1")
    source = RegistrySource.objects.create(name="prod", region=h.REGION)

    run = sync_source(source, mode=SyncRun.Mode.FULL)

    assert run.status == SyncRun.Status.SUCCEEDED, run.errors  # a missing job is a fact, not a failure
    assert run.counts["training_jobs_missing"] == 1
    gone = TrainingJob.objects.get(name="credit-v1")
    assert gone.missing and "Requested resource not found" in gone.error and gone.status == ""
    link = PackageTraining.objects.get(package__arn=registry["arns"][0])
    assert link.training_job == gone and link.resolved_from == "lineage"
    # Absence is final: the next full sync does not ask again.
    again = sync_source(source, mode=SyncRun.Mode.FULL)
    assert "DescribeTrainingJob" not in again.aws_calls


def test_without_lineage_the_job_is_found_from_the_metadata_and_model_data_url(aws: None) -> None:
    sm, s3 = h.clients()
    h.make_bucket(s3)
    h.create_group(sm, "churn")
    training_job(sm, "churn-2025-01-07", data="s3://data/churn/")
    sm.create_model_package(
        ModelPackageGroupName="churn",
        InferenceSpecification={
            "Containers": [
                {"Image": IMAGE, "ModelDataUrl": f"s3://{h.BUCKET}/jobs/churn-2025-01-07/output/model.tar.gz"}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        CustomerMetadataProperties={"TrainingDataS3VersionId": "v7"},
    )
    source = RegistrySource.objects.create(name="prod", region=h.REGION)

    run = sync_source(source, mode=SyncRun.Mode.FULL)

    link = PackageTraining.objects.get()
    assert (link.job_name, link.resolved_from, link.lineage_status) == (
        "churn-2025-01-07",
        "model_data_url",
        "no_artifact",
    )
    assert link.training_job.status == "Completed" and link.training_data_version == "v7"
    assert run.aws_calls["DescribeTrainingJob"] == 1 and "QueryLineage" not in run.aws_calls
