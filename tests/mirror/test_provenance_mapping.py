"""Provenance mapping on real response shapes: DescribeTrainingJob / DescribeProcessingJob answers (the
contract tests' records, through the adapter's JSON form), the job a package record names, the lineage
walk over stubbed ListArtifacts / QueryLineage / ListAssociations answers, and training differences."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from registry_app.aws.sagemaker import RegistryClient, jsonable
from registry_app.aws.session import SourceConfig
from registry_app.mirror import lineage
from registry_app.mirror import provenance_mapping as pm
from registry_app.mirror.provenance_selectors import covering_prefixes
from tests.aws.contracts import ACCOUNT, REGION, Stubs, arn
from tests.aws.test_lineage_contracts import JOB, processing_job_record, training_job_record

PACKAGE = arn("model-package", "abalone/3")


def test_a_training_job_answer_maps_to_columns_and_data_rows() -> None:
    fields, rows = pm.training_job_fields(jsonable(training_job_record()))

    assert fields["status"] == "Completed" and fields["arn"] == arn("training-job", JOB.lower())
    assert fields["hyperparameters"] == {"max_depth": "5", "eta": "0.2", "objective": "reg:linear", "num_round": "50"}
    assert fields["image_digest"] == "sha256:" + "4d" * 32
    assert (fields["instance_type"], fields["instance_count"], fields["volume_size_gb"]) == ("ml.m5.xlarge", 1, 30)
    assert fields["volume_kms_key"].startswith("arn:aws:kms:")
    assert (fields["network_isolation"], fields["inter_container_encryption"]) == (False, True)
    assert fields["duration_s"] == 420 and fields["billable_s"] == 420
    assert fields["started_at"] == dt.datetime(2025, 3, 1, 9, 32, tzinfo=dt.UTC)
    assert fields["final_metrics"][0] == {"name": "validation:rmse", "value": 2.1234}
    assert "Environment" not in fields["record"]  # may hold secrets: never mirrored
    assert [(r.direction, r.name, r.data_type) for r in rows] == [
        ("input", "train", "S3Prefix"),
        ("input", "validation", "S3Prefix"),
        ("output", "model", ""),
    ]
    assert rows[0].details == {
        "S3DataDistributionType": "FullyReplicated",
        "ContentType": "text/csv",
        "CompressionType": "None",
        "RecordWrapperType": "None",
    }


def test_a_running_job_on_a_heterogeneous_cluster_with_a_file_system_channel() -> None:
    record = training_job_record(status="InProgress")
    record["ResourceConfig"] = {
        "InstanceGroups": [
            {"InstanceType": "ml.p4d.24xlarge", "InstanceCount": 2, "InstanceGroupName": "gpu"},
            {"InstanceType": "ml.c5.18xlarge", "InstanceCount": 4, "InstanceGroupName": "data"},
        ],
        "VolumeSizeInGB": 100,
    }
    record["InputDataConfig"] = [
        {
            "ChannelName": "train",
            "DataSource": {
                "FileSystemDataSource": {
                    "FileSystemId": "fs-0a1b2c",
                    "FileSystemAccessMode": "ro",
                    "FileSystemType": "FSxLustre",
                    "DirectoryPath": "/fsx/train",
                }
            },
        }
    ]
    for key in ("TrainingEndTime", "TrainingTimeInSeconds", "BillableTimeInSeconds"):
        record.pop(key)
    record["AlgorithmSpecification"]["TrainingImage"] = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/llm:2025.1"

    fields, rows = pm.training_job_fields(jsonable(record))

    assert fields["status"] == "InProgress" and fields["duration_s"] is None and fields["ended_at"] is None
    assert fields["instance_type"] == "ml.p4d.24xlarge×2, ml.c5.18xlarge×4" and fields["instance_count"] == 6
    assert fields["image_digest"] == ""  # a tag: not pinned
    assert rows[0].s3_uri == "fsxlustre://fs-0a1b2c/fsx/train" and rows[0].data_type == "fsxlustre"


def test_a_processing_job_answer_maps_inputs_and_outputs() -> None:
    fields, rows = pm.processing_job_fields(jsonable(processing_job_record()))

    assert fields["status"] == "Completed" and fields["duration_s"] == 8 * 60
    assert (fields["instance_type"], fields["instance_count"]) == ("ml.m5.xlarge", 1)
    assert fields["image_uri"].endswith("sagemaker-xgboost:1.0-1-cpu-py3")
    assert [(r.direction, r.name) for r in rows] == [("input", "input-1"), ("input", "code"), ("output", "evaluation")]
    assert rows[0].s3_uri.endswith(f"/{JOB}/output/model.tar.gz")


def package_record(**extra: Any) -> dict[str, Any]:
    return {
        "ModelPackageArn": PACKAGE,
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [
                {"Image": "img", "ModelDataUrl": f"s3://sagemaker-project-p-1/AbaloneTrain/{JOB}/output/model.tar.gz"}
            ]
        },
        **extra,
    }


def test_the_job_a_record_names_in_priority_order() -> None:
    pipeline = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/abalone/execution/4r83jejmhorv"
    card = {"training_details": {"training_job_details": {"training_arn": arn("training-job", "from-card")}}}
    record = package_record(
        MetadataProperties={"GeneratedBy": pipeline},
        SourceAlgorithmSpecification={
            "SourceAlgorithms": [{"AlgorithmName": "xgb-algo", "ModelDataUrl": "s3://b/algo-job-1/output/model.tar.gz"}]
        },
    )

    candidates = pm.job_candidates(record, card_content=card)
    chosen, note = pm.choose(candidates, ACCOUNT)

    # A pipeline execution is not a training job; the source algorithm's model outranks the containers'.
    assert [(c.source, c.name) for c in candidates] == [
        ("source_algorithm", "algo-job-1"),
        ("model_data_url", JOB),
        ("model_card", "from-card"),
    ]
    assert chosen == pm.Candidate("source_algorithm", "algo-job-1")
    assert note == f"Other sources name from-card, {JOB}."
    lineage_first, note = pm.choose([*candidates, pm.Candidate("lineage", JOB.lower())], ACCOUNT)
    # Lineage names the job in lower case; the model data URL spells it as it was created.
    assert lineage_first == pm.Candidate("lineage", JOB) and note == "Other sources name algo-job-1, from-card."


def test_generated_by_a_training_job_in_another_account_is_named_but_not_readable() -> None:
    record = package_record(MetadataProperties={"GeneratedBy": arn("training-job", "shared-job", "444455556666")})

    chosen, note = pm.choose(pm.job_candidates(record), ACCOUNT)

    assert chosen == pm.Candidate("generated_by", "shared-job", "444455556666")
    assert note.startswith("The job is in account 444455556666; this source reads account 111122223333 only.")


@pytest.mark.parametrize(
    "url",
    [
        "s3://b/model.tar.gz",
        "s3://b/x/output/model.tar",
        "https://b/job/output/model.tar.gz",
        "s3://b/-bad-/output/model.tar.gz",
    ],
)
def test_model_urls_that_name_no_job(url: str) -> None:
    assert pm.job_from_model_url(url) == ""


def test_the_inputs_hash_ignores_the_approval_and_follows_the_model_and_data_version() -> None:
    base = pm.inputs_hash(package_record())

    assert pm.inputs_hash(package_record(ModelApprovalStatus="Approved", ApprovalDescription="ok")) == base
    assert pm.inputs_hash(package_record(CustomerMetadataProperties={"TrainingDataS3VersionId": "v2"})) != base
    assert pm.inputs_hash(package_record(MetadataProperties={"GeneratedBy": "x"})) != base


def test_relations_of_a_lineage_answer_to_the_package() -> None:
    package, model, job, data, evaluation, report, group = (f"v{i}" for i in range(7))
    edges = [(data, job), (job, model), (model, package), (package, group), (model, evaluation), (evaluation, report)]

    found = pm.relations(package, edges, [package, model, job, data, evaluation, report, group, "lonely"])

    assert found[package] == ("self", 0)
    assert found[model] == ("ancestor", 1) and found[data] == ("ancestor", 3)
    assert found[group] == ("descendant", 1)
    assert found[evaluation] == ("related", 2) and found[report] == ("related", 3)
    assert found["lonely"] == ("related", 0)


def test_component_names_give_the_job() -> None:
    component = arn("experiment-trial-component", f"{JOB.lower()}-aws-training-job")

    assert pm.component_job(component) == ("training", JOB.lower())
    assert pm.component_job(arn("experiment-trial-component", "eval-aws-processing-job")) == ("processing", "eval")
    assert pm.component_job(arn("experiment-trial-component", "my-notebook-run")) is None
    assert pm.component_job(arn("artifact", "abc-aws-training-job")) is None


def job_row(**fields: Any) -> SimpleNamespace:
    defaults = dict(
        training_image="img@sha256:aa",
        image_digest="sha256:aa",
        algorithm_name="",
        instance_type="ml.m5.xlarge",
        instance_count=1,
        network_isolation=True,
        inter_container_encryption=None,
        volume_kms_key="",
        role_arn="role",
        hyperparameters={"eta": "0.1", "depth": "6"},
        inputs=[SimpleNamespace(direction="input", name="train", s3_uri="s3://d/train/1/")],
    )
    return SimpleNamespace(**{**defaults, **fields})


def test_training_differences_name_hyperparameters_data_image_and_settings() -> None:
    approved = pm.training_summary(job_row(), data_version="v1")
    candidate = pm.training_summary(
        job_row(
            hyperparameters={"eta": "0.05", "seed": "7"},
            inputs=[SimpleNamespace(direction="input", name="train", s3_uri="s3://d/train/2/")],
            training_image="img@sha256:bb",
            image_digest="sha256:bb",
            instance_count=2,
        ),
        data_version="v2",
    )

    diffs = {(d.kind, d.name): (d.before, d.after, d.change) for d in pm.training_differences(candidate, approved)}

    assert diffs == {
        ("hyperparameter", "depth"): ("6", "", "removed"),
        ("hyperparameter", "eta"): ("0.1", "0.05", "changed"),
        ("hyperparameter", "seed"): ("", "7", "added"),
        ("data", "train"): ("s3://d/train/1/", "s3://d/train/2/", "changed"),
        ("data", "TrainingDataS3VersionId"): ("v1", "v2", "changed"),
        ("image", "training image"): ("img@sha256:aa", "img@sha256:bb", "changed"),
        ("image", "image digest"): ("sha256:aa", "sha256:bb", "changed"),
        ("setting", "instance count"): ("1", "2", "changed"),
    }
    assert pm.training_differences(approved, approved) == []


def test_covering_prefixes_are_the_leading_paths_of_a_location() -> None:
    assert covering_prefixes("s3://b/train/2025/part-1.csv") == [
        "s3://b",
        "s3://b/",
        "s3://b/train",
        "s3://b/train/",
        "s3://b/train/2025",
        "s3://b/train/2025/",
        "s3://b/train/2025/part-1.csv",
    ]


# --------------------------------------------------------------------------------------------- the walk, stubbed


@pytest.fixture
def stubbed() -> tuple[RegistryClient, Stubs]:
    client = RegistryClient(SourceConfig(name="prod", region=REGION))
    return client, Stubs(client.client)


ROOT = arn("artifact", "5b3c8e6f1a0d4e2f9c7b6a5d4e3f2a1b")
MODEL = arn("artifact", "6c4d9f7a2b1e5f3a0d8c7b6e5f4a3b2c")
TRAIN = arn("experiment-trial-component", f"{JOB.lower()}-aws-training-job")
DATA = arn("artifact", "0a1b2c3d4e5f60718293a4b5c6d7e8f9")
EVAL = arn("experiment-trial-component", "abalone-eval-aws-processing-job")


def summary(artifact: str, uri: str, kind: str) -> dict[str, Any]:
    return {
        "ArtifactArn": artifact,
        "Source": {"SourceUri": uri},
        "ArtifactType": kind,
        "CreationTime": dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
    }


def test_the_walk_goes_up_from_the_package_and_down_from_its_model(stubbed: tuple[RegistryClient, Stubs]) -> None:
    client, stubs = stubbed
    stubs.ok("sagemaker", "ListArtifacts", {"ArtifactSummaries": [summary(ROOT, PACKAGE, "ModelPackage")]}, None)
    stubs.ok(
        "sagemaker",
        "QueryLineage",
        {
            "Vertices": [
                {"Arn": MODEL, "Type": "Model", "LineageType": "Artifact"},
                {"Arn": TRAIN, "Type": "TrainingJob", "LineageType": "TrialComponent"},
                {"Arn": DATA, "Type": "DataSet", "LineageType": "Artifact"},
            ],
            "Edges": [
                {"SourceArn": MODEL, "DestinationArn": ROOT, "AssociationType": "ContributedTo"},
                {"SourceArn": TRAIN, "DestinationArn": MODEL, "AssociationType": "Produced"},
                {"SourceArn": DATA, "DestinationArn": TRAIN, "AssociationType": "ContributedTo"},
            ],
        },
        {
            "StartArns": [ROOT],
            "Direction": "Ascendants",
            "IncludeEdges": True,
            "MaxDepth": lineage.MAX_DEPTH,
            "MaxResults": 50,
        },
    )
    stubs.ok(
        "sagemaker",
        "QueryLineage",
        {
            "Vertices": [{"Arn": EVAL, "Type": "ProcessingJob", "LineageType": "TrialComponent"}],
            "Edges": [{"SourceArn": MODEL, "DestinationArn": EVAL, "AssociationType": "ContributedTo"}],
        },
        {"StartArns": [MODEL], "Direction": "Descendants", "IncludeEdges": True, "MaxDepth": 2, "MaxResults": 50},
    )

    walk = lineage.walk_package(client, PACKAGE)

    stubs.done()
    assert walk.status == lineage.WALKED and walk.root_arn == ROOT
    assert walk.job_components("training") == [(TRAIN, JOB.lower())]
    assert walk.job_components("processing") == [(EVAL, "abalone-eval")]
    assert len(walk.edges) == 4 and client.stats.as_dict() == {"ListArtifacts": 1, "QueryLineage": 2}


def test_a_refused_query_lineage_walks_by_associations(stubbed: tuple[RegistryClient, Stubs]) -> None:
    client, stubs = stubbed
    stubs.ok("sagemaker", "ListArtifacts", {"ArtifactSummaries": [summary(ROOT, PACKAGE, "ModelPackage")]}, None)
    stubs.error(
        "sagemaker", "QueryLineage", "AccessDeniedException", "not authorized to perform sagemaker:QueryLineage"
    )
    with pytest.raises(lineage.QueryRefused):
        lineage.walk_package(client, PACKAGE)

    stubs.ok("sagemaker", "ListArtifacts", {"ArtifactSummaries": [summary(ROOT, PACKAGE, "ModelPackage")]}, None)
    into = {"DestinationArn": ROOT, "MaxResults": 100}
    stubs.ok(
        "sagemaker",
        "ListAssociations",
        {
            "AssociationSummaries": [
                {
                    "SourceArn": MODEL,
                    "DestinationArn": ROOT,
                    "SourceType": "Model",
                    "DestinationType": "ModelPackage",
                    "AssociationType": "ContributedTo",
                    "SourceName": "model.tar.gz",
                }
            ]
        },
        into,
    )
    stubs.ok(
        "sagemaker",
        "ListAssociations",
        {
            "AssociationSummaries": [
                {
                    "SourceArn": TRAIN,
                    "DestinationArn": MODEL,
                    "SourceType": "TrainingJob",
                    "DestinationType": "Model",
                    "AssociationType": "Produced",
                }
            ]
        },
        {"DestinationArn": MODEL, "MaxResults": 100},
    )
    # Nothing reaches the training job; then one step down from the model finds nothing either.
    stubs.ok(
        "sagemaker", "ListAssociations", {"AssociationSummaries": []}, {"DestinationArn": TRAIN, "MaxResults": 100}
    )
    stubs.ok("sagemaker", "ListAssociations", {"AssociationSummaries": []}, {"SourceArn": MODEL, "MaxResults": 100})

    walk = lineage.walk_package(client, PACKAGE, use_query=False)

    stubs.done()
    assert walk.status == lineage.WALKED
    assert walk.vertices[MODEL]["Name"] == "model.tar.gz" and walk.vertices[TRAIN]["LineageType"] == "TrialComponent"
    assert walk.job_components("training") == [(TRAIN, JOB.lower())]


def test_a_package_without_a_lineage_artifact_is_not_walked(stubbed: tuple[RegistryClient, Stubs]) -> None:
    client, stubs = stubbed
    stubs.ok("sagemaker", "ListArtifacts", {"ArtifactSummaries": []}, None)

    walk = lineage.walk_package(client, PACKAGE)

    stubs.done()
    assert walk.status == lineage.NO_ARTIFACT and client.stats.as_dict() == {"ListArtifacts": 1}


def test_locations_are_bounded_for_the_index() -> None:
    assert pm.bounded_uri("s3://b/" + "k" * 2000) == ("s3://b/" + "k" * 2000)[:1024]
    wide = pm.bounded_uri("s3://b/" + "€" * 1000)  # 3 bytes a character
    assert len(wide.encode()) <= 2000 and wide.startswith("s3://b/€")
