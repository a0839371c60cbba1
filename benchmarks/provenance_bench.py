"""Provenance benchmark: the extra AWS calls (and time) a full sync makes for training provenance and
lineage at 10,000 packages, on the AWS-faithful fake (moto + the lineage APIs) in its own process.

The registry: 200 groups x 50 versions. Every fifth version re-registers the model of the version
before it (same training job), so 8,000 distinct training jobs train 10,000 packages; each job reads
three channels (train and validation sets shared by ten versions of a group, and one reference set
shared by every group) with one of four images; every tenth version has an evaluation job reading
its model. Each package's lineage is what SageMaker records: data sets and image -> training job ->
model -> package, model -> evaluation job.

Phases, each in its own process (peak RSS is the phase's own), each first sync on a fresh database:

* full sync with provenance switched off (the package pass alone, for comparison);
* full sync with provenance; then a second full sync and a no-change incremental one on that mirror
  (nothing may be described again: a finished job never is).

    .venv/bin/python benchmarks/provenance_bench.py [--groups 200] [--versions 50] [--threads 8]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
import tempfile
import time
from typing import Any

from benchlib import ROOT, free_port, peak_rss_mb, run_phase, start_fake, stop, timed_sync

REGION = "eu-west-1"
ACCOUNT = "123456789012"
PROVENANCE_OPS = (
    "ListArtifacts",
    "QueryLineage",
    "ListAssociations",
    "DescribeArtifact",
    "DescribeTrainingJob",
    "DescribeProcessingJob",
)
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"
SHARED = "s3://bench-data/shared/reference/"


def boto(service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service, region_name=REGION, config=Config(retries={"mode": "standard"}, max_pool_connections=16)
    )


def job_of(group: int, version: int) -> str:
    """Every fifth version re-registers the model of the version before it."""
    trained = version - 1 if version % 5 == 0 else version
    return f"bench-g{group:03d}-job-{trained:03d}"


def image_of(group: int) -> str:
    digest = hashlib.sha256(f"image-{group % 4}".encode()).hexdigest()
    return f"111122223333.dkr.ecr.{REGION}.amazonaws.com/bench-train@sha256:{digest}"


# --- phases (each in its own process) ----------------------------------------------------
def phase_seed(groups: int, versions: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    sm = boto("sagemaker")
    shared = sm.create_artifact(Source={"SourceUri": SHARED}, ArtifactType="DataSet")["ArtifactArn"]
    calls = {"n": 1}

    def seed_group(g: int) -> tuple[int, int]:
        name = f"bench-g{g:03d}"
        sm.create_model_package_group(ModelPackageGroupName=name)
        artifacts: dict[str, str] = {SHARED: shared}
        jobs = evaluations = 0
        n = 1

        def artifact(uri: str, kind: str) -> str:
            nonlocal n
            if uri not in artifacts:
                artifacts[uri] = sm.create_artifact(Source={"SourceUri": uri}, ArtifactType=kind)["ArtifactArn"]
                n += 1
            return artifacts[uri]

        def link(source: str, destination: str, kind: str) -> None:
            nonlocal n
            sm.add_association(SourceArn=source, DestinationArn=destination, AssociationType=kind)
            n += 1

        for v in range(1, versions + 1):
            job = job_of(g, v)
            model_url = f"s3://bench-models/jobs/{job}/output/model.tar.gz"
            channels = {
                "train": f"s3://bench-data/g{g:03d}/train/{(v - 1) // 10}/",
                "validation": f"s3://bench-data/g{g:03d}/validation/{(v - 1) // 10}/",
                "reference": SHARED,
            }
            component = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:experiment-trial-component/{job}-aws-training-job"
            if job_of(g, v) != job_of(g, v - 1) or v == 1:
                sm.create_training_job(
                    TrainingJobName=job,
                    HyperParameters={"eta": f"0.{v % 9 + 1}", "max_depth": str(4 + v % 4)},
                    AlgorithmSpecification={"TrainingImage": image_of(g), "TrainingInputMode": "File"},
                    RoleArn=ROLE,
                    InputDataConfig=[
                        {"ChannelName": c, "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": u}}}
                        for c, u in channels.items()
                    ],
                    OutputDataConfig={"S3OutputPath": "s3://bench-models/jobs"},
                    ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
                    StoppingCondition={"MaxRuntimeInSeconds": 3600},
                )
                jobs += 1
                n += 1
                for uri in channels.values():
                    link(artifact(uri, "DataSet"), component, "ContributedTo")
                link(artifact(image_of(g), "Image"), component, "ContributedTo")
                link(component, artifact(model_url, "Model"), "Produced")
            arn = sm.create_model_package(
                ModelPackageGroupName=name,
                ModelApprovalStatus=("PendingManualApproval", "Approved", "Rejected")[v % 3],
                InferenceSpecification={
                    "Containers": [{"Image": image_of(g).replace("-train", ""), "ModelDataUrl": model_url}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )["ModelPackageArn"]
            n += 1
            link(artifact(model_url, "Model"), artifact(arn, "ModelPackage"), "ContributedTo")
            if v % 10 == 0:
                evaluation = f"bench-g{g:03d}-eval-{v:03d}"
                sm.create_processing_job(
                    ProcessingJobName=evaluation,
                    ProcessingResources={
                        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20}
                    },
                    AppSpecification={"ImageUri": image_of(g)},
                    RoleArn=ROLE,
                    ProcessingInputs=[
                        {
                            "InputName": "model",
                            "S3Input": {
                                "S3Uri": model_url,
                                "LocalPath": "/opt/ml/processing/model",
                                "S3DataType": "S3Prefix",
                                "S3InputMode": "File",
                            },
                        }
                    ],
                )
                n += 1
                evaluations += 1
                tc = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:experiment-trial-component/{evaluation}-aws-processing-job"
                link(artifact(model_url, "Model"), tc, "ContributedTo")
        calls["n"] += n
        return jobs, evaluations

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(seed_group, range(groups)))
    return {
        "seconds": round(time.perf_counter() - start, 1),
        "training_jobs": sum(r[0] for r in results),
        "processing_jobs": sum(r[1] for r in results),
        "seed_calls": calls["n"],
    }


def phase_sync(mode: str, threads: int, provenance: str) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    os.environ["SYNC_THREADS"] = str(threads)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from registry_app.mirror import apply
    from registry_app.models import ModelPackage, PackageTraining, TrainingJob

    if provenance == "off":
        # The package pass calls it through mirror/apply.py's own name (since the mirror split).
        apply.mirror_provenance = lambda ctx, arns: None  # type: ignore[assignment]
    call_command("migrate", verbosity=0)
    source, run, wall, queries = timed_sync(mode, region=REGION)
    calls = dict(run.aws_calls or {})
    return {
        "status": run.status,
        "error": run.error,
        "errors": len(run.errors),
        "packages": ModelPackage.objects.filter(source=source).count(),
        "linked": PackageTraining.objects.filter(training_job__isnull=False).count(),
        "jobs_mirrored": TrainingJob.objects.count(),
        "wall_s": round(wall, 2),
        "aws_s_summed": round(run.aws_seconds or 0, 2),
        "calls": calls,
        "provenance_calls": {op: calls[op] for op in PROVENANCE_OPS if op in calls},
        "total_calls": sum(calls.values()),
        "sql_queries": queries,
        "rss_mb": round(peak_rss_mb(), 1),
        "counts": run.counts,
    }


# --- driver ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--phase", nargs="+")
    args = parser.parse_args()

    if args.phase:
        name, *rest = args.phase
        result = (
            phase_seed(int(rest[0]), int(rest[1])) if name == "seed" else phase_sync(rest[0], int(rest[1]), rest[2])
        )
        print(json.dumps(result))
        return

    port = free_port()
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        DEBUG="true",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        LOG_LEVEL="ERROR",
    )
    env.pop("DATABASE_URL", None)  # each sync below needs its own fresh SQLite mirror
    fake = start_fake(port, env)
    try:
        n = args.groups * args.versions
        print(f"# provenance benchmark: {args.groups} groups x {args.versions} versions = {n} packages")
        seed = run_phase(__file__, env, "seed", str(args.groups), str(args.versions))
        print(f"seeded in {seed['seconds']} s: {seed}")
        off = run_phase(
            __file__, dict(env, VAR_DIR=tempfile.mkdtemp(prefix="prov-off-")), "sync", "full", str(args.threads), "off"
        )
        on_env = dict(env, VAR_DIR=tempfile.mkdtemp(prefix="prov-on-"))
        on = run_phase(__file__, on_env, "sync", "full", str(args.threads), "on")
        again = run_phase(__file__, on_env, "sync", "full", str(args.threads), "on")
        incremental = run_phase(__file__, on_env, "sync", "incremental", str(args.threads), "on")
        result = {"seed": seed, "full_without": off, "full_with": on, "full_again": again, "incremental": incremental}
        print(json.dumps(result, indent=2))
        extra = on["total_calls"] - off["total_calls"]
        described = on["provenance_calls"].get("DescribeTrainingJob", 0)
        rows = [
            (
                "packages / distinct training jobs / evaluation jobs",
                f"{n} / {seed['training_jobs']} / {seed['processing_jobs']}",
            ),
            (
                "full sync without provenance: wall, AWS calls, SQL",
                f"{off['wall_s']} s, {off['total_calls']}, {off['sql_queries']}",
            ),
            (
                "full sync with provenance: wall, AWS calls, SQL",
                f"{on['wall_s']} s, {on['total_calls']}, {on['sql_queries']}",
            ),
            (
                "extra AWS calls for provenance",
                f"{extra} ({round(extra / n, 2)} per package): {on['provenance_calls']}",
            ),
            ("DescribeTrainingJob / distinct jobs", f"{described} / {seed['training_jobs']}"),
            ("packages linked to their job", on["linked"]),
            ("peak RSS without / with", f"{off['rss_mb']} / {on['rss_mb']} MB"),
            ("second full sync: provenance calls, wall", f"{again['provenance_calls'] or 0}, {again['wall_s']} s"),
            (
                "no-change incremental: provenance calls, all calls",
                f"{incremental['provenance_calls'] or 0}, {incremental['calls']}",
            ),
        ]
        print("\n| figure | value |\n|---|---|")
        for label, value in rows:
            print(f"| {label} | {value} |")
    finally:
        stop(fake)


if __name__ == "__main__":
    main()
