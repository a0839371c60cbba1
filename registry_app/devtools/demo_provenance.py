"""The demo registry's training provenance: training jobs, evaluation and preparation jobs, and the ML
Lineage Tracking graph SageMaker would have recorded for them (the fake records nothing by itself).

Called by ``demo_seed.seed_registry`` once the packages and endpoints exist. Deterministic, like the
rest of the seed. What it makes, for the review page and the impact page to show:

* one training job per version (``<group>-v<N>-<hex>``, the name the standalone cards cite), with the
  group's hyperparameters (some changed between versions), train / validation channels, an image
  pinned by digest (one group trains on a tag only), a KMS-encrypted volume for the high-risk groups,
  the final validation metric, and a run of realistic length (``aws_fake.finish_training_job``);
* an evaluation processing job per version (``<group>-eval-v<N>``, as the cards cite) reading the
  model and a test set and writing the evaluation report; a preparation job for the credit model's
  two newest versions, from raw bureau data to their training set;
* the lineage: data sets and image -> training job -> model -> package -> model group context, and
  model -> evaluation job -> report; raw data -> preparation job -> training set;
* one data set shared by two groups: ``s3://acme-ml-data-eu-west-1/shared/customer-transactions/2025-01/``
  trains credit-default-xgb v5, v6 and churn-propensity v2, v5 (and fraud-detector v3, v4 train on
  the ``2024-12/`` sibling), so ``/lineage/?data=s3://acme-ml-data-eu-west-1/shared/`` finds several;
* house-price-regressor v1's training job deleted (retention clean-up): its package keeps the lineage,
  and the dashboard shows the job as gone;
* support-ticket-router v1 and v2 without any (registered from a notebook): no training job found.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from typing import Any

from registry_app.devtools import aws_fake

SHARED_DATA = "s3://acme-ml-data-{region}/shared/customer-transactions/{month}/"
SHARED = {  # (group, version) -> month of the shared customer-transactions extract
    ("credit-default-xgb", 5): "2025-01",
    ("credit-default-xgb", 6): "2025-01",
    ("churn-propensity", 2): "2025-01",
    ("churn-propensity", 5): "2025-01",
    ("fraud-detector", 3): "2024-12",
    ("fraud-detector", 4): "2024-12",
}
PREPARED = {("credit-default-xgb", 5), ("credit-default-xgb", 6)}  # a preparation job made their train set
NO_PROVENANCE = {("support-ticket-router", 1), ("support-ticket-router", 2)}
DELETED_JOB = ("house-price-regressor", 1)
UNPINNED_GROUPS = {"support-ticket-router"}  # trains on an image tag, not a digest
ENCRYPTED_GROUPS = {"credit-default-xgb", "fraud-detector"}
# Hyperparameters that differ from the group's (GroupSpec.hyper_parameters) in one version.
OVERRIDES: dict[tuple[str, int], dict[str, str]] = {
    ("credit-default-xgb", 1): {"max_depth": "4", "num_round": "400"},
    ("credit-default-xgb", 2): {"max_depth": "5", "num_round": "400"},
    ("credit-default-xgb", 4): {"eta": "0.08"},
    ("credit-default-xgb", 6): {"scale_pos_weight": "11", "num_round": "750"},
    ("house-price-regressor", 4): {"learning_rate": "0.03", "max_iter": "1000"},
    ("churn-propensity", 5): {"max_depth": "6"},
    ("fraud-detector", 5): {"max_depth": "9", "scale_pos_weight": "75"},
    ("support-ticket-router", 4): {"learning_rate": "2e-5"},
    ("demand-forecast", 4): {"context_length": "84"},
}
TRAINING_METRIC = {"binary": "validation:auc", "regression": "validation:rmse", "multiclass": "eval_accuracy"}
ROLE = "service-role/AmazonSageMaker-ExecutionRole-MLPlatform"


def _hex(*parts: object, length: int = 64) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:length]


def training_job_name(group: str, version: int) -> str:
    """The name the standalone model cards cite (``demo_seed.standalone_card_content``)."""
    return f"{group}-v{version}-{_hex(group, version, length=8)}"


def training_image(group: Any, region: str, tag: str) -> str:
    image = group.image.format(region=region, tag=tag).replace("-inference:", "-training:")
    if group.name in UNPINNED_GROUPS:
        return image
    repository = image.rsplit(":", 1)[0]
    return f"{repository}@sha256:{_hex('training-image', image)}"


class _Seeder:
    """The calls for one region's client, with the artifacts already made there (one per source URI)."""

    def __init__(self, sm: Any, region: str, account: str) -> None:
        self.sm = sm
        self.region = region
        self.account = account
        self.artifacts: dict[str, str] = {}
        self.associations = 0

    def artifact(self, uri: str, kind: str, name: str = "") -> str:
        if uri not in self.artifacts:
            extra = {"ArtifactName": name} if name else {}
            answer = self.sm.create_artifact(Source={"SourceUri": uri}, ArtifactType=kind, **extra)
            self.artifacts[uri] = answer["ArtifactArn"]
        return self.artifacts[uri]

    def component(self, job: str, kind: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:experiment-trial-component/{job.lower()}-aws-{kind}-job"

    def link(self, source: str, destination: str, kind: str) -> None:
        self.sm.add_association(SourceArn=source, DestinationArn=destination, AssociationType=kind)
        self.associations += 1


def seed_provenance(ctx: Any, clients: dict[bool, Any], groups: Iterable[Any], *, now: dt.datetime) -> list[str]:
    """Create the jobs and lineage for the packages ``ctx`` holds; returns the summary's lines."""
    endpoint_url = os.environ.get("AWS_ENDPOINT_URL") or None  # the fake in another process: its HTTP hook
    seeders = {flag: _Seeder(client, ctx.regions[flag], ctx.account) for flag, client in clients.items()}
    jobs = processing = 0
    for group in groups:
        seeder = seeders[group.second_region]
        context = seeder.sm.create_context(
            ContextName=f"{group.name}-{_hex('group', group.name, length=8)}",
            Source={"SourceUri": f"arn:aws:sagemaker:{seeder.region}:{ctx.account}:model-package-group/{group.name}"},
            ContextType="ModelGroup",
        )["ContextArn"]
        for version, spec in enumerate(group.versions, start=1):
            if (group.name, version) in NO_PROVENANCE:
                continue
            ended = now - dt.timedelta(days=_days_ago(group, version) + 0.25)
            _training(ctx, seeder, group, version, spec, context, ended, endpoint_url)
            jobs += 1
            processing += 1 + int((group.name, version) in PREPARED)
    seeders[False].sm.delete_training_job(TrainingJobName=training_job_name(*DELETED_JOB))
    shared = SHARED_DATA.format(region=ctx.regions[False], month="2025-01")
    associations = sum(s.associations for s in seeders.values())
    return [
        f"  provenance: {jobs} training jobs, {processing} processing jobs, {associations} lineage associations",
        f"    shared data set: {shared} (credit-default-xgb v5, v6; churn-propensity v2, v5)",
        f"    training job deleted: {training_job_name(*DELETED_JOB)} ({DELETED_JOB[0]} v{DELETED_JOB[1]})",
    ]


def _days_ago(group: Any, version: int) -> float:
    """Registration time as the CloudTrail history has it (175 to 8 days ago across the versions)."""
    count = len(group.versions)
    return 175.0 - (version - 1) * (167.0 / max(1, count - 1))


def _training(
    ctx: Any,
    seeder: _Seeder,
    group: Any,
    version: int,
    spec: Any,
    context: str,
    ended: dt.datetime,
    endpoint_url: str | None,
) -> None:
    key = (group.name, version)
    region, account, bucket = seeder.region, ctx.account, ctx.buckets[group.second_region]
    name = training_job_name(group.name, version)
    data = f"s3://acme-ml-data-{region}"
    channels = {"train": ctx.datasets[key], "validation": f"{data}/{group.name}/validation/{version:03d}/"}
    if key in SHARED:
        channels["transactions"] = SHARED_DATA.format(region=region, month=SHARED[key])
    image = training_image(group, region, spec.image_tag or group.image_tag)
    hyperparameters = {**dict(group.hyper_parameters), **OVERRIDES.get(key, {})}
    resources: dict[str, Any] = {
        "InstanceType": group.instance_types[-1].replace("ml.g4dn", "ml.g5"),
        "InstanceCount": 2 if group.problem == "binary" else 1,
        "VolumeSizeInGB": 50,
    }
    if group.name in ENCRYPTED_GROUPS:
        resources["VolumeKmsKeyId"] = f"arn:aws:kms:{region}:{account}:key/{_hex('kms', group.name, length=8)}-ml"
    seeder.sm.create_training_job(
        TrainingJobName=name,
        HyperParameters=hyperparameters,
        AlgorithmSpecification={
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": TRAINING_METRIC[group.problem], "Regex": r"validation-\w+:([0-9.]+)"}],
        },
        RoleArn=f"arn:aws:iam::{account}:role/{ROLE}",
        InputDataConfig=[
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": group.content_type,
            }
            for channel, uri in channels.items()
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/training-jobs"},
        ResourceConfig=resources,
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
        EnableNetworkIsolation=group.name != "support-ticket-router",
        EnableInterContainerTrafficEncryption=group.name in ENCRYPTED_GROUPS,
    )
    minutes = 18 + int(_hex("minutes", name, length=2), 16) % 70
    started = ended - dt.timedelta(minutes=minutes)
    value = (
        spec.quality + 0.004
        if group.problem != "regression"
        else round(group.target_std * (1 - spec.quality) ** 0.5, 4)
    )
    arn = f"arn:aws:sagemaker:{region}:{account}:training-job/{name}"
    aws_fake.finish_training_job(
        arn,
        started=started,
        ended=ended,
        final_metrics=[(TRAINING_METRIC[group.problem], round(value, 4))],
        endpoint_url=endpoint_url,
    )
    component = seeder.component(name, "training")
    for channel, uri in channels.items():
        seeder.link(seeder.artifact(uri, "DataSet", f"{group.name}-{channel}"), component, "ContributedTo")
    seeder.link(seeder.artifact(image, "Image"), component, "ContributedTo")
    model = seeder.artifact(ctx.model_urls[key], "Model")
    seeder.link(component, model, "Produced")
    package = seeder.artifact(ctx.arns[key], "ModelPackage")
    seeder.link(model, package, "ContributedTo")
    seeder.link(package, context, "AssociatedWith")
    _evaluation(ctx, seeder, group, version, model, ended, endpoint_url)
    if key in PREPARED:
        _preparation(seeder, group, version, channels["train"], started, endpoint_url)


def _processing_job(seeder: _Seeder, name: str, image: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    seeder.sm.create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
        },
        AppSpecification={"ImageUri": image},
        RoleArn=f"arn:aws:iam::{seeder.account}:role/{ROLE}",
        NetworkConfig={"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": False},
        ProcessingInputs=[
            {
                "InputName": input_name,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": f"/opt/ml/processing/{input_name}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
            for input_name, uri in inputs.items()
        ],
        ProcessingOutputConfig={
            "Outputs": [
                {
                    "OutputName": output_name,
                    "S3Output": {
                        "S3Uri": uri,
                        "LocalPath": f"/opt/ml/processing/{output_name}",
                        "S3UploadMode": "EndOfJob",
                    },
                }
                for output_name, uri in outputs.items()
            ]
        },
    )
    return seeder.component(name, "processing")


def _evaluation(
    ctx: Any, seeder: _Seeder, group: Any, version: int, model: str, trained: dt.datetime, endpoint_url: str | None
) -> None:
    region, bucket = seeder.region, ctx.buckets[group.second_region]
    name = f"{group.name}-eval-v{version}"
    test = f"s3://acme-ml-data-{region}/{group.name}/test/{version:03d}/"
    report = f"s3://{bucket}/{group.name}/{version}/evaluation.json"
    image = f"141502667606.dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    component = _processing_job(
        seeder,
        name,
        image,
        {"model": ctx.model_urls[(group.name, version)], "test": test},
        {"evaluation": f"s3://{bucket}/{group.name}/{version}/"},
    )
    aws_fake.finish_processing_job(
        f"arn:aws:sagemaker:{region}:{ctx.account}:processing-job/{name}",
        started=trained + dt.timedelta(minutes=6),
        ended=trained + dt.timedelta(minutes=19),
        endpoint_url=endpoint_url,
    )
    seeder.link(model, component, "ContributedTo")
    seeder.link(seeder.artifact(test, "DataSet", f"{group.name}-test"), component, "ContributedTo")
    seeder.link(component, seeder.artifact(report, "Report"), "Produced")


def _preparation(
    seeder: _Seeder, group: Any, version: int, train: str, before: dt.datetime, endpoint_url: str | None
) -> None:
    region = seeder.region
    name = f"{group.name}-prep-v{version}"
    raw = f"s3://acme-raw-{region}/bureau/2025-01/"
    image = f"141502667606.dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    component = _processing_job(seeder, name, image, {"raw": raw}, {"train": train})
    aws_fake.finish_processing_job(
        f"arn:aws:sagemaker:{region}:{seeder.account}:processing-job/{name}",
        started=before - dt.timedelta(minutes=40),
        ended=before - dt.timedelta(minutes=12),
        endpoint_url=endpoint_url,
    )
    seeder.link(seeder.artifact(raw, "DataSet", "bureau-raw"), component, "ContributedTo")
    seeder.link(component, seeder.artifact(train, "DataSet"), "Produced")
