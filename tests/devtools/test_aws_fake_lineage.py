"""The AWS-faithful fake: training and processing jobs as AWS answers them, and ML Lineage Tracking
(artifacts, contexts, associations, QueryLineage), which plain moto does not implement."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError

from registry_app.devtools import aws_fake
from tests.devtools.helpers import ACCOUNT, REGION, Registry

ROLE = f"arn:aws:iam::{ACCOUNT}:role/Exec"
T0 = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)


def training_job(registry: Registry, name: str, **extra: Any) -> None:
    registry.sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": "img:1",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "validation:auc", "Regex": "auc=([0-9.]+)"}],
        },
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": "s3://b/out"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        **extra,
    )


def processing_job(registry: Registry, name: str) -> None:
    registry.sm.create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20}
        },
        AppSpecification={"ImageUri": "img:1"},
        RoleArn=ROLE,
    )


def error_of(call: Any, **params: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    return dict(caught.value.response["Error"])


def test_a_missing_job_is_answered_in_aws_words(fake: Registry) -> None:
    assert error_of(fake.sm.describe_training_job, TrainingJobName="gone") == {
        "Code": "ValidationException",
        "Message": "Requested resource not found.",
    }
    assert error_of(fake.sm.describe_processing_job, ProcessingJobName="gone")["Message"] == (
        "Could not find requested job with name gone"
    )


def test_plain_moto_words_a_missing_training_job_its_own_way(plain: Registry) -> None:
    assert error_of(plain.sm.describe_training_job, TrainingJobName="gone")["Message"].startswith(
        "Could not find training job"
    )


def test_jobs_keep_what_the_request_said_and_finish_with_a_run(fake: Registry) -> None:
    training_job(fake, "job-1")
    processing_job(fake, "eval-1")
    aws_fake.finish_training_job(
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/job-1",
        started=T0,
        ended=T0 + dt.timedelta(minutes=42),
        final_metrics=[("validation:auc", 0.91)],
    )

    job = fake.sm.describe_training_job(TrainingJobName="job-1")
    evaluation = fake.sm.describe_processing_job(ProcessingJobName="eval-1")

    assert job["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "validation:auc", "Regex": "auc=([0-9.]+)"}]
    assert job["TrainingTimeInSeconds"] == 42 * 60 and job["BillableTimeInSeconds"] == 42 * 60
    assert job["TrainingStartTime"] == T0 and job["FinalMetricDataList"][0]["Value"] == 0.91
    assert evaluation["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.large"


def test_plain_moto_drops_processing_resources_and_invents_metric_definitions(plain: Registry) -> None:
    training_job(plain, "job-1")
    processing_job(plain, "eval-1")

    assert "ProcessingResources" not in plain.sm.describe_processing_job(ProcessingJobName="eval-1")
    definitions = plain.sm.describe_training_job(TrainingJobName="job-1")["AlgorithmSpecification"]["MetricDefinitions"]
    assert definitions[0]["Name"] == "test:dcg"


def test_a_deleted_training_job_is_gone_but_its_component_stays_in_the_lineage(fake: Registry) -> None:
    training_job(fake, "old-job")
    model = fake.sm.create_artifact(Source={"SourceUri": "s3://b/m.tar.gz"}, ArtifactType="Model")["ArtifactArn"]
    component = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:experiment-trial-component/old-job-aws-training-job"
    fake.sm.add_association(SourceArn=component, DestinationArn=model, AssociationType="Produced")

    fake.sm.delete_training_job(TrainingJobName="old-job")

    assert (
        error_of(fake.sm.describe_training_job, TrainingJobName="old-job")["Message"] == "Requested resource not found."
    )
    answer = fake.sm.query_lineage(StartArns=[model], Direction="Ascendants", IncludeEdges=True)
    assert answer["Vertices"] == [{"Arn": component, "Type": "TrainingJob", "LineageType": "TrialComponent"}]


def test_associations_need_existing_entities_and_a_known_type(fake: Registry) -> None:
    data = fake.sm.create_artifact(Source={"SourceUri": "s3://d/train/"}, ArtifactType="DataSet")["ArtifactArn"]
    nowhere = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:experiment-trial-component/never-aws-training-job"

    assert error_of(fake.sm.add_association, SourceArn=data, DestinationArn=nowhere)["Code"] == "ResourceNotFound"
    assert error_of(fake.sm.describe_artifact, ArtifactArn=data + "0")["Code"] == "ResourceNotFound"


def test_plain_moto_has_no_lineage_at_all(plain: Registry) -> None:
    with pytest.raises(NotImplementedError):
        plain.sm.list_artifacts(SourceUri="s3://d/train/")


def graph(fake: Registry) -> dict[str, str]:
    """raw -> prep -> train -> training job -> model -> package -> group, and model -> evaluation."""
    for name in ("train-1",):
        training_job(fake, name)
    processing_job(fake, "prep-1")
    processing_job(fake, "eval-1")
    arns = {
        kind: fake.sm.create_artifact(Source={"SourceUri": uri}, ArtifactType=kind_type)["ArtifactArn"]
        for kind, uri, kind_type in (
            ("raw", "s3://raw/2025-01/", "DataSet"),
            ("train", "s3://d/train/", "DataSet"),
            ("model", "s3://b/out/train-1/output/model.tar.gz", "Model"),
            ("package", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/g/1", "ModelPackage"),
        )
    }
    arns["group"] = fake.sm.create_context(
        ContextName="g-ctx", Source={"SourceUri": "arn:group"}, ContextType="ModelGroup"
    )["ContextArn"]
    component = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:experiment-trial-component/%s"
    arns.update(
        prep=component % "prep-1-aws-processing-job",
        job=component % "train-1-aws-training-job",
        eval=component % "eval-1-aws-processing-job",
    )
    for source, destination, kind in (
        ("raw", "prep", "ContributedTo"),
        ("prep", "train", "Produced"),
        ("train", "job", "ContributedTo"),
        ("job", "model", "Produced"),
        ("model", "package", "ContributedTo"),
        ("package", "group", "AssociatedWith"),
        ("model", "eval", "ContributedTo"),
    ):
        fake.sm.add_association(SourceArn=arns[source], DestinationArn=arns[destination], AssociationType=kind)
    return arns


def test_query_lineage_walks_each_direction_to_the_depth_asked(fake: Registry) -> None:
    arns = graph(fake)

    def reached(direction: str, depth: int, start: str = "package") -> set[str]:
        answer = fake.sm.query_lineage(StartArns=[arns[start]], Direction=direction, MaxDepth=depth, IncludeEdges=True)
        names = {arn: name for name, arn in arns.items()}
        return {names[v["Arn"]] for v in answer["Vertices"]}

    assert reached("Ascendants", 2) == {"model", "job"}
    assert reached("Ascendants", 10) == {"model", "job", "train", "prep", "raw"}
    assert reached("Descendants", 10) == {"group"}
    # Both: onwards from every vertex visited, so the evaluation job beside the package is found.
    assert "eval" in reached("Both", 3)
    assert reached("Descendants", 1, start="model") == {"package", "eval"}


def test_query_lineage_pages_vertices_and_carries_the_edges_that_reach_them(fake: Registry) -> None:
    arns = graph(fake)
    pages = []
    token = None
    while True:
        answer = fake.sm.query_lineage(
            StartArns=[arns["package"]],
            Direction="Ascendants",
            IncludeEdges=True,
            MaxResults=2,
            **({"NextToken": token} if token else {}),
        )
        pages.append(answer)
        token = answer.get("NextToken")
        if not token:
            break

    assert [len(p["Vertices"]) for p in pages] == [2, 2, 1]
    edges = {(e["SourceArn"], e["DestinationArn"]) for p in pages for e in p["Edges"]}
    assert (arns["raw"], arns["prep"]) in edges and (arns["model"], arns["package"]) in edges
    assert error_of(fake.sm.query_lineage, StartArns=[arns["package"], arns["model"]])["Code"] == "ValidationException"


def test_list_artifacts_by_source_and_associations_by_either_end(fake: Registry) -> None:
    arns = graph(fake)

    found = fake.sm.list_artifacts(SourceUri="s3://d/train/")["ArtifactSummaries"]
    into_model = fake.sm.list_associations(DestinationArn=arns["model"])["AssociationSummaries"]
    out_of_model = fake.sm.list_associations(SourceArn=arns["model"], SortOrder="Ascending")["AssociationSummaries"]

    assert [a["ArtifactArn"] for a in found] == [arns["train"]] and found[0]["ArtifactType"] == "DataSet"
    assert [(a["SourceType"], a["AssociationType"]) for a in into_model] == [("TrainingJob", "Produced")]
    assert {a["DestinationType"] for a in out_of_model} == {"ModelPackage", "ProcessingJob"}
