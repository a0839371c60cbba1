"""Contract tests of the provenance reads (registry_app/aws/lineage.py): requests checked against the
service model, responses shaped like the API reference (botocore validates both), and each
operation's not-found answer as AWS gives it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registry_app.aws import lineage
from registry_app.aws.errors import AccessDeniedError, NotFoundError, ValidationError
from registry_app.aws.sagemaker import RegistryClient
from tests.aws.contracts import ACCOUNT, REGION, Stubs, arn, contract

SM = "sagemaker"
T0 = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
JOB = "pipelines-4r83jejmhorv-TrainAbaloneModel-xw869y8C4a"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost@sha256:" + "4d" * 32


def training_job_record(name: str = JOB, status: str = "Completed") -> dict[str, Any]:
    """A DescribeTrainingJob answer as a SageMaker Pipelines training step leaves it."""
    return {
        "TrainingJobName": name,
        "TrainingJobArn": arn("training-job", name.lower()),
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://sagemaker-project-p-1/AbaloneTrain/{name}/output/model.tar.gz"},
        "TrainingJobStatus": status,
        "SecondaryStatus": "Completed",
        "HyperParameters": {"max_depth": "5", "eta": "0.2", "objective": "reg:linear", "num_round": "50"},
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "validation:rmse", "Regex": ".*\\[[0-9]+\\].*#011validation-rmse:(\\S+)"}],
            "EnableSageMakerMetricsTimeSeries": False,
        },
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMaker-ExecutionRole",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://sagemaker-project-p-1/AbaloneProcess/output/train",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
                "CompressionType": "None",
                "RecordWrapperType": "None",
            },
            {
                "ChannelName": "validation",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://sagemaker-project-p-1/AbaloneProcess/output/validation",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
            },
        ],
        "OutputDataConfig": {"KmsKeyId": "", "S3OutputPath": "s3://sagemaker-project-p-1/AbaloneTrain"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
            "VolumeKmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": T0,
        "TrainingStartTime": T0 + dt.timedelta(minutes=2),
        "TrainingEndTime": T0 + dt.timedelta(minutes=9),
        "LastModifiedTime": T0 + dt.timedelta(minutes=9),
        "SecondaryStatusTransitions": [
            {"Status": "Starting", "StartTime": T0, "EndTime": T0 + dt.timedelta(minutes=2)},
            {
                "Status": "Completed",
                "StartTime": T0 + dt.timedelta(minutes=9),
                "StatusMessage": "Training job completed",
            },
        ],
        "FinalMetricDataList": [
            {"MetricName": "validation:rmse", "Value": 2.1234, "Timestamp": T0 + dt.timedelta(minutes=8)},
            {"MetricName": "train:rmse", "Value": 1.98, "Timestamp": T0 + dt.timedelta(minutes=8)},
        ],
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": True,
        "EnableManagedSpotTraining": False,
        "TrainingTimeInSeconds": 420,
        "BillableTimeInSeconds": 420,
        "Environment": {"DB_PASSWORD": "never-mirrored"},
        "ProfilingStatus": "Disabled",
    }


def processing_job_record(name: str = "pipelines-4r83jejmhorv-EvaluateAbaloneMode-gLvMLxr6tW") -> dict[str, Any]:
    return {
        "ProcessingInputs": [
            {
                "InputName": "input-1",
                "AppManaged": False,
                "S3Input": {
                    "S3Uri": f"s3://sagemaker-project-p-1/AbaloneTrain/{JOB}/output/model.tar.gz",
                    "LocalPath": "/opt/ml/processing/model",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                    "S3CompressionType": "None",
                },
            },
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": "s3://sagemaker-project-p-1/code/evaluate.py",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "evaluation",
                    "S3Output": {
                        "S3Uri": "s3://sagemaker-project-p-1/AbaloneEval/output/evaluation",
                        "LocalPath": "/opt/ml/processing/evaluation",
                        "S3UploadMode": "EndOfJob",
                    },
                    "AppManaged": False,
                }
            ]
        },
        "ProcessingJobName": name,
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "AppSpecification": {
            "ImageUri": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/evaluate.py"],
        },
        "NetworkConfig": {"EnableInterContainerTrafficEncryption": False, "EnableNetworkIsolation": False},
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/service-role/AmazonSageMaker-ExecutionRole",
        "ProcessingJobArn": arn("processing-job", name.lower()),
        "ProcessingJobStatus": "Completed",
        "ProcessingEndTime": T0 + dt.timedelta(minutes=20),
        "ProcessingStartTime": T0 + dt.timedelta(minutes=12),
        "LastModifiedTime": T0 + dt.timedelta(minutes=20),
        "CreationTime": T0 + dt.timedelta(minutes=10),
    }


@contract(SM, "DescribeTrainingJob")
def test_a_training_job_is_described_with_datetimes_as_text(client: RegistryClient, stubs: Stubs) -> None:
    stubs.ok(SM, "DescribeTrainingJob", training_job_record(), {"TrainingJobName": JOB})

    record = lineage.describe_training_job(client, JOB)

    assert record["TrainingJobStatus"] == "Completed"
    assert record["TrainingStartTime"] == "2025-03-01T09:32:00+00:00"
    assert record["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"].endswith("/output/train")
    assert client.stats.as_dict() == {"DescribeTrainingJob": 1}


@contract(SM, "DescribeTrainingJob")
def test_a_missing_training_job_is_not_found_in_aws_words_and_in_motos(client: RegistryClient, stubs: Stubs) -> None:
    # AWS: ValidationException "Requested resource not found." (its modelled ResourceNotFound is not used).
    stubs.error(SM, "DescribeTrainingJob", "ValidationException", "Requested resource not found.")
    stubs.error(SM, "DescribeTrainingJob", "ResourceNotFound", "Training job gone-2 not found")
    stubs.error(
        SM,
        "DescribeTrainingJob",
        "ValidationException",
        f"Could not find training job '{arn('training-job', 'gone-3')}'.",
    )
    stubs.error(SM, "DescribeTrainingJob", "ValidationException", "1 validation error detected: Value 'x'")
    stubs.error(SM, "DescribeTrainingJob", "AccessDeniedException", "not authorized", status=400)

    for name in ("gone-1", "gone-2", "gone-3"):
        with pytest.raises(NotFoundError):
            lineage.describe_training_job(client, name)
    with pytest.raises(ValidationError):
        lineage.describe_training_job(client, "bad")
    with pytest.raises(AccessDeniedError):
        lineage.describe_training_job(client, "denied")


@contract(SM, "DescribeProcessingJob")
def test_a_processing_job_is_described_and_a_missing_one_is_not_found(client: RegistryClient, stubs: Stubs) -> None:
    name = "pipelines-4r83jejmhorv-EvaluateAbaloneMode-gLvMLxr6tW"
    stubs.ok(SM, "DescribeProcessingJob", processing_job_record(name), {"ProcessingJobName": name})
    stubs.error(SM, "DescribeProcessingJob", "ValidationException", "Could not find requested job with name gone")

    record = lineage.describe_processing_job(client, name)
    with pytest.raises(NotFoundError):
        lineage.describe_processing_job(client, "gone")

    assert record["ProcessingOutputConfig"]["Outputs"][0]["OutputName"] == "evaluation"
    assert record["CreationTime"] == "2025-03-01T09:40:00+00:00"


@contract(SM, "ListArtifacts")
def test_the_package_artifact_is_found_by_its_source_uri_over_pages(client: RegistryClient, stubs: Stubs) -> None:
    package = arn("model-package", "abalone/3")
    summary = {
        "ArtifactArn": arn("artifact", "5b3c8e6f1a0d4e2f9c7b6a5d4e3f2a1b"),
        "Source": {"SourceUri": package, "SourceTypes": []},
        "ArtifactType": "ModelPackage",
        "CreationTime": T0,
        "LastModifiedTime": T0,
    }
    expected = {"SourceUri": package, "SortBy": "CreationTime", "SortOrder": "Ascending", "MaxResults": 100}
    stubs.ok(SM, "ListArtifacts", {"ArtifactSummaries": [summary], "NextToken": "n2"}, expected)
    stubs.ok(SM, "ListArtifacts", {"ArtifactSummaries": []}, {**expected, "NextToken": "n2"})

    found = lineage.artifacts_with_source(client, package)

    assert [a["ArtifactArn"] for a in found] == [summary["ArtifactArn"]]
    assert found[0]["CreationTime"] == "2025-03-01T09:30:00+00:00"


@contract(SM, "DescribeArtifact")
def test_an_artifact_is_described_with_its_source_and_version(client: RegistryClient, stubs: Stubs) -> None:
    artifact = arn("artifact", "0a1b2c3d4e5f60718293a4b5c6d7e8f9")
    stubs.ok(
        SM,
        "DescribeArtifact",
        {
            "ArtifactArn": artifact,
            "Source": {
                "SourceUri": "s3://sagemaker-project-p-1/AbaloneProcess/output/train",
                "SourceTypes": [{"SourceIdType": "S3Version", "Value": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"}],
            },
            "ArtifactType": "DataSet",
            "Properties": {"owner": "data-eng"},
            "CreationTime": T0,
            "LastModifiedTime": T0,
        },
        {"ArtifactArn": artifact},
    )
    stubs.error(SM, "DescribeArtifact", "ResourceNotFound", f"Artifact {artifact}-x does not exist.")

    record = lineage.describe_artifact(client, artifact)
    with pytest.raises(NotFoundError):
        lineage.describe_artifact(client, artifact + "-x")

    assert record["Source"]["SourceTypes"][0]["SourceIdType"] == "S3Version"


@contract(SM, "QueryLineage")
def test_lineage_is_queried_from_one_start_page_by_page(client: RegistryClient, stubs: Stubs) -> None:
    start = arn("artifact", "5b3c8e6f1a0d4e2f9c7b6a5d4e3f2a1b")
    model = arn("artifact", "6c4d9f7a2b1e5f3a0d8c7b6e5f4a3b2c")
    component = arn("experiment-trial-component", f"{JOB.lower()}-aws-training-job")
    expected = {"StartArns": [start], "Direction": "Ascendants", "IncludeEdges": True, "MaxDepth": 6, "MaxResults": 50}
    stubs.ok(
        SM,
        "QueryLineage",
        {
            "Vertices": [{"Arn": model, "Type": "Model", "LineageType": "Artifact"}],
            "Edges": [{"SourceArn": model, "DestinationArn": start, "AssociationType": "ContributedTo"}],
            "NextToken": "q2",
        },
        expected,
    )
    stubs.ok(
        SM,
        "QueryLineage",
        {
            "Vertices": [{"Arn": component, "Type": "TrainingJob", "LineageType": "TrialComponent"}],
            "Edges": [{"SourceArn": component, "DestinationArn": model, "AssociationType": "Produced"}],
        },
        {**expected, "NextToken": "q2"},
    )

    answer = lineage.query_lineage(client, start, direction="Ascendants", max_depth=6)

    assert [v["Type"] for v in answer.vertices] == ["Model", "TrainingJob"]
    assert [e["AssociationType"] for e in answer.edges] == ["ContributedTo", "Produced"]
    assert not answer.truncated
    assert client.stats.as_dict() == {"QueryLineage": 2}


@contract(SM, "QueryLineage")
def test_a_lineage_answer_of_too_many_pages_is_cut_and_says_so(client: RegistryClient, stubs: Stubs) -> None:
    start = arn("artifact", "5b3c8e6f1a0d4e2f9c7b6a5d4e3f2a1b")
    for page in range(lineage.MAX_QUERY_PAGES):
        vertex = {"Arn": arn("artifact", f"a{page:031d}"), "Type": "DataSet", "LineageType": "Artifact"}
        stubs.ok(SM, "QueryLineage", {"Vertices": [vertex], "Edges": [], "NextToken": f"p{page + 1}"}, None)

    answer = lineage.query_lineage(client, start, direction="Descendants", max_depth=99)

    assert answer.truncated and len(answer.vertices) == lineage.MAX_QUERY_PAGES


@contract(SM, "ListAssociations")
def test_associations_are_listed_from_either_end(client: RegistryClient, stubs: Stubs) -> None:
    model = arn("artifact", "6c4d9f7a2b1e5f3a0d8c7b6e5f4a3b2c")
    package = arn("artifact", "5b3c8e6f1a0d4e2f9c7b6a5d4e3f2a1b")
    summary = {
        "SourceArn": model,
        "DestinationArn": package,
        "SourceType": "Model",
        "DestinationType": "ModelPackage",
        "AssociationType": "ContributedTo",
        "SourceName": "model.tar.gz",
        "CreationTime": T0,
    }
    stubs.ok(
        SM, "ListAssociations", {"AssociationSummaries": [summary]}, {"DestinationArn": package, "MaxResults": 100}
    )
    stubs.ok(SM, "ListAssociations", {"AssociationSummaries": []}, {"SourceArn": package, "MaxResults": 100})

    into = lineage.associations(client, package, as_source=False)
    out_of = lineage.associations(client, package, as_source=True)

    assert [a["SourceType"] for a in into] == ["Model"] and out_of == []
