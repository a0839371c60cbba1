"""Sync benchmark: 200 groups × 50 versions (10,000 packages, one metrics report each) on a
loopback moto server.

Prints, for the full sync and for a no-change incremental sync: packages, AWS calls by
operation, wall time, time inside AWS calls (summed over threads) vs ours, peak RSS of the
syncing process, SQL queries; and the floor: the same AWS calls made by a bare boto3 loop
with no database, measured in the same run.

    .venv/bin/python benchmarks/sync_bench.py [--groups 200] [--versions 50] [--threads 8]

Every phase runs in its own process so that peak RSS is the phase's own. Uses DATABASE_URL
when set (e.g. PostgreSQL), else a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from typing import Any

from benchlib import free_port, peak_rss_mb, run_phase, start_moto, stop

REGION = "eu-west-1"
BUCKET = "bench-artifacts"


def boto(service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(service, region_name=REGION, config=Config(retries={"mode": "standard"}))


# --- phases (each in its own process) ----------------------------------------------------
def phase_seed(groups: int, versions: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    sm, s3 = boto("sagemaker"), boto("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    report = json.dumps(
        {
            "binary_classification_metrics": {
                "auc": {"value": 0.9, "standard_deviation": 0.01},
                "accuracy": {"value": 0.85, "standard_deviation": "NaN"},
                "confusion_matrix": {"0": {"0": 90, "1": 10}, "1": {"0": 5, "1": 45}},
            }
        }
    )

    def seed_group(g: int) -> None:
        name = f"bench-group-{g:03d}"
        sm.create_model_package_group(ModelPackageGroupName=name, ModelPackageGroupDescription="benchmark")
        for v in range(1, versions + 1):
            key = f"{name}/{v}/evaluation.json"
            s3.put_object(Bucket=BUCKET, Key=key, Body=report)
            sm.create_model_package(
                ModelPackageGroupName=name,
                ModelApprovalStatus=("PendingManualApproval", "Approved", "Rejected")[v % 3],
                InferenceSpecification={
                    "Containers": [{"Image": "1.dkr.ecr.eu-west-1.amazonaws.com/x:1", "ModelDataUrl": f"s3://b/{key}"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                ModelMetrics={
                    "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{key}"}}
                },
                CustomerMetadataProperties={"GitCommitSha": f"{g:03d}{v:03d}"},
            )

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(seed_group, range(groups)))
    return {"seconds": round(time.perf_counter() - start, 1)}


def phase_floor(kind: str) -> dict[str, Any]:
    """The same AWS calls as a sync, made sequentially by a bare boto3 loop, no database."""
    sm, s3 = boto("sagemaker"), boto("s3")
    calls: dict[str, int] = {}

    def call(op: str, fn: Any, **kw: Any) -> Any:
        calls[op] = calls.get(op, 0) + 1
        return fn(**kw)

    start = time.perf_counter()
    summaries: list[dict[str, Any]] = []
    token = None
    while True:
        kw: dict[str, Any] = {"ModelPackageType": "Versioned", "MaxResults": 100}
        if token:
            kw["NextToken"] = token
        page = call("ListModelPackages", sm.list_model_packages, **kw)
        summaries.extend(page["ModelPackageSummaryList"])
        token = page.get("NextToken")
        if not token:
            break
    if kind == "listing":
        return {"seconds": round(time.perf_counter() - start, 2), "calls": calls, "rss_mb": round(peak_rss_mb(), 1)}
    if kind == "search":
        records = [
            r["ModelPackage"] for r in call("Search", sm.search, Resource="ModelPackage", MaxResults=100)["Results"]
        ]
    else:
        records = [
            call("DescribeModelPackage", sm.describe_model_package, ModelPackageName=s["ModelPackageArn"])
            for s in summaries
        ]
    for record in records:
        uri = record["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
        bucket, key = uri[5:].split("/", 1)
        call("GetObject", s3.get_object, Bucket=bucket, Key=key)["Body"].read()
    return {"seconds": round(time.perf_counter() - start, 2), "calls": calls, "rss_mb": round(peak_rss_mb(), 1)}


def phase_sync(mode: str, threads: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    os.environ["SYNC_THREADS"] = str(threads)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from registry_app.mirror.execute import sync_source
    from registry_app.models import ModelPackage, RegistrySource

    if mode == "full-fallback":
        # As where IAM denies sagemaker:Search: the sync falls back to List + Describe.
        from registry_app.aws.errors import AccessDeniedError
        from registry_app.aws.sagemaker import RegistryClient

        def denied(self: Any, **_: Any) -> Any:
            raise AccessDeniedError("Search: AccessDeniedException (benchmark)", operation="Search")

        RegistryClient.iter_search_package_pages = denied  # type: ignore[method-assign]
        mode = "full"
    if mode == "full":
        call_command("migrate", verbosity=0)
    source, _ = RegistrySource.objects.get_or_create(name="bench", defaults={"region": REGION})
    queries = 0

    def counter(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    start = time.perf_counter()
    with connection.execute_wrapper(counter):
        run = sync_source(source, mode=mode)
    wall = time.perf_counter() - start
    return {
        "status": run.status,
        "error": run.error,
        "packages": ModelPackage.objects.filter(source=source).count(),
        "wall_s": round(wall, 2),
        "aws_s_summed": round(run.aws_seconds or 0, 2),
        "calls": run.aws_calls,
        "total_calls": run.total_calls,
        "sql_queries": queries,
        "rss_mb": round(peak_rss_mb(), 1),
        "counts": run.counts,
        "errors": len(run.errors),
    }


# --- driver ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--fallback", action="store_true", help="Also time a first full sync without Search")
    parser.add_argument("--phase", nargs="+")
    args = parser.parse_args()

    if args.phase:
        name, *rest = args.phase
        if name == "seed":
            result = phase_seed(int(rest[0]), int(rest[1]))
        elif name == "floor":
            result = phase_floor(rest[0])
        else:
            result = phase_sync(rest[0], int(rest[1]))
        print(json.dumps(result))
        return

    port = free_port()
    tmp = tempfile.mkdtemp(prefix="sync-bench-")
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        DEBUG="true",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        VAR_DIR=tmp,
        LOG_LEVEL="ERROR",
    )
    moto = start_moto(port)
    try:
        n = args.groups * args.versions
        print(
            f"# sync benchmark: {args.groups} groups x {args.versions} versions = {n} packages, "
            f"threads={args.threads}, db={'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'sqlite'}"
        )
        seed = run_phase(__file__, env, "seed", str(args.groups), str(args.versions))
        print(f"seeded in {seed['seconds']} s")
        floor_ld = run_phase(__file__, env, "floor", "describe")
        floor_search = run_phase(__file__, env, "floor", "search")
        floor_list = run_phase(__file__, env, "floor", "listing")
        full = run_phase(__file__, env, "sync", "full", str(args.threads))
        incr = run_phase(__file__, env, "sync", "incremental", str(args.threads))
        fallback = None
        if args.fallback:
            fb_env = dict(env, VAR_DIR=tempfile.mkdtemp(prefix="sync-bench-fb-"))
            if os.environ.get("DATABASE_URL"):
                fb_env.pop("DATABASE_URL")  # a fresh SQLite file: this must be a first sync too
            fallback = run_phase(__file__, fb_env, "sync", "full-fallback", str(args.threads))
        pages = -(-n // 100)
        # Strategy lower bound: its listing pages (Search: 100 records a page on AWS; moto returns
        # everything in one) + one S3 GET per report + the group listing pages.
        search_pages = full["calls"].get("Search") or pages
        bound_search = search_pages + n + -(-args.groups // 100)
        result = {
            "packages": n,
            "floor_list_describe_get_s": floor_ld["seconds"],
            "floor_same_calls_as_sync_s": floor_search["seconds"],
            "floor_listing_only_s": floor_list["seconds"],
            "full": full,
            "incremental_no_change": incr,
            "full_calls_vs_lower_bound": round(full["total_calls"] / bound_search, 3),
            "full_wall_vs_floor_list_describe_get": round(full["wall_s"] / floor_ld["seconds"], 3),
            "full_wall_vs_floor_same_calls": round(full["wall_s"] / floor_search["seconds"], 3),
            "incremental_listing_calls_expected": pages,
        }
        print(json.dumps(result, indent=2))
        print("\n| figure | value |\n|---|---|")
        print(f"| packages | {n} |")
        print(f"| full sync wall | {full['wall_s']} s |")
        print(f"| full sync AWS time (summed over {args.threads} threads) | {full['aws_s_summed']} s |")
        print(f"| full sync AWS calls | {full['total_calls']} ({full['calls']}) |")
        print(f"| lower bound (listing pages + 1 GET per report + group pages) | {bound_search} |")
        print(f"| full sync SQL queries | {full['sql_queries']} |")
        print(f"| full sync peak RSS | {full['rss_mb']} MB |")
        print(f"| floor: bare sequential list + describe + GET | {floor_ld['seconds']} s |")
        print(f"| floor: bare sequential Search + GET + list | {floor_search['seconds']} s |")
        print(f"| no-change incremental wall | {incr['wall_s']} s |")
        print(f"| no-change incremental AWS calls | {incr['total_calls']} ({incr['calls']}), expected {pages} |")
        print(f"| no-change incremental SQL queries | {incr['sql_queries']} |")
        print(f"| no-change incremental peak RSS | {incr['rss_mb']} MB |")
        print(f"| floor: bare listing only | {floor_list['seconds']} s |")
        if fallback:
            bound_ld = pages + n + n + -(-args.groups // 100)
            print(
                f"| full sync without Search (List + Describe) wall | {fallback['wall_s']} s "
                f"({round(fallback['wall_s'] / floor_ld['seconds'], 3)} x the list+describe+GET floor) |"
            )
            print(
                f"| full sync without Search AWS calls | {fallback['total_calls']} ({fallback['calls']}); "
                f"lower bound {bound_ld} |"
            )
            print(f"| full sync without Search peak RSS | {fallback['rss_mb']} MB |")
    finally:
        stop(moto)


if __name__ == "__main__":
    main()
