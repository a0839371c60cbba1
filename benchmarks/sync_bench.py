"""Sync benchmark: 200 groups × 50 versions (10,000 packages, one metrics report each) on a
loopback server of the AWS-faithful fake (``python -m registry_app.devtools.aws_fake``: moto with
AWS's Search paging, 100 records a call, sorting and LastModifiedTime filters).

Prints, for the full sync, a no-change incremental sync and an incremental after a content-only
change to 10 packages: packages, AWS calls by operation, wall time, time inside AWS calls (summed
over threads) vs ours, peak RSS of the syncing process, SQL queries; and the floor: the same AWS
calls made by a bare boto3 loop with no database, measured in the same run.

    .venv/bin/python benchmarks/sync_bench.py [--groups 200] [--versions 50] [--threads 8] [--fallback]

The seeded packages are backdated a day (the fake's hook), as a registry's packages are older than the
sync that reads them: the incremental's Search from its watermark (minus five minutes) then sees only
what changed. Every phase runs in its own process so that peak RSS is the phase's own. Uses
DATABASE_URL when set (e.g. PostgreSQL), else a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import free_port, peak_rss_mb, run_phase, start_fake, stop, timed_sync

REGION = "eu-west-1"
BUCKET = "bench-artifacts"
TOUCHED = 10  # packages given a content-only change before the last incremental
ROOT = Path(__file__).resolve().parent.parent


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

    from registry_app.devtools.aws_fake import backdate_package

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)

    def seed_group(g: int) -> None:
        name = f"bench-group-{g:03d}"
        sm.create_model_package_group(ModelPackageGroupName=name, ModelPackageGroupDescription="benchmark")
        for v in range(1, versions + 1):
            key = f"{name}/{v}/evaluation.json"
            s3.put_object(Bucket=BUCKET, Key=key, Body=report)
            arn = sm.create_model_package(
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
            )["ModelPackageArn"]
            backdate_package(arn, day_ago + dt.timedelta(seconds=g * versions + v), endpoint_url=endpoint)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(seed_group, range(groups)))
    return {"seconds": round(time.perf_counter() - start, 1)}


def phase_floor(kind: str) -> dict[str, Any]:
    """The same AWS calls as a sync, made sequentially by a bare boto3 loop, no database.

    ``search``: a full sync's calls (identity, both group listings, tags and a creation-ordered Search per
    group, one GET per report, cards, endpoints); ``describe``: list + describe + GET (the reference
    floor); ``listing``: a no-change incremental's (the package listing and one Search from a minute ago).
    """
    sm, s3, sts = boto("sagemaker"), boto("s3"), boto("sts")
    calls: dict[str, int] = {}

    def call(op: str, fn: Any, **kw: Any) -> Any:
        calls[op] = calls.get(op, 0) + 1
        return fn(**kw)

    def pages(op: str, fn: Any, key: str, **kw: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = None
        while True:
            response = call(op, fn, **(kw | ({"NextToken": token} if token else {})))
            out.extend(response[key])
            token = response.get("NextToken")
            if not token:
                return out

    start = time.perf_counter()
    if kind == "search":
        call("GetCallerIdentity", sts.get_caller_identity)
        groups = pages(
            "ListModelPackageGroups", sm.list_model_package_groups, "ModelPackageGroupSummaryList", MaxResults=100
        )
        pages(
            "ListModelPackageGroups",
            sm.list_model_package_groups,
            "ModelPackageGroupSummaryList",
            MaxResults=100,
            CrossAccountFilterOption="CrossAccount",
        )
        records = []
        for group in groups:
            call("ListTags", sm.list_tags, ResourceArn=group["ModelPackageGroupArn"], MaxResults=100)
            name = group["ModelPackageGroupName"]
            filters = [{"Name": "ModelPackageGroupName", "Operator": "Equals", "Value": name}]
            found = pages(
                "Search",
                sm.search,
                "Results",
                Resource="ModelPackage",
                MaxResults=100,
                SortBy="CreationTime",
                SortOrder="Ascending",
                SearchExpression={"Filters": filters},
            )
            records.extend(r["ModelPackage"] for r in found)
        call("ListModelCards", sm.list_model_cards, MaxResults=100)
        call("ListEndpoints", sm.list_endpoints, MaxResults=100)
    else:
        summaries = pages(
            "ListModelPackages",
            sm.list_model_packages,
            "ModelPackageSummaryList",
            ModelPackageType="Versioned",
            MaxResults=100,
        )
        if kind == "listing":
            since = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
            filters = [{"Name": "LastModifiedTime", "Operator": "GreaterThanOrEqualTo", "Value": since}]
            pages(
                "Search",
                sm.search,
                "Results",
                Resource="ModelPackage",
                MaxResults=100,
                SortBy="LastModifiedTime",
                SortOrder="Ascending",
                SearchExpression={"Filters": filters},
            )
            return {"seconds": round(time.perf_counter() - start, 2), "calls": calls, "rss_mb": round(peak_rss_mb(), 1)}
        records = [
            call("DescribeModelPackage", sm.describe_model_package, ModelPackageName=s["ModelPackageArn"])
            for s in summaries
        ]
    for record in records:
        uri = record["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
        bucket, key = uri[5:].split("/", 1)
        call("GetObject", s3.get_object, Bucket=bucket, Key=key, Range="bytes=0-5242880")["Body"].read()
    if kind == "search":
        # The provenance pass (issue 13) looks each new package's lineage artifact up once; the bench's
        # registry records no lineage, so that one call per package is all it makes.
        for record in records:
            call(
                "ListArtifacts",
                sm.list_artifacts,
                SourceUri=record["ModelPackageArn"],
                SortBy="CreationTime",
                SortOrder="Ascending",
                MaxResults=100,
            )
    return {"seconds": round(time.perf_counter() - start, 2), "calls": calls, "rss_mb": round(peak_rss_mb(), 1)}


def phase_touch(count: int) -> dict[str, Any]:
    """A content-only change (a new inference image) to ``count`` packages: nothing a listing shows."""
    sm = boto("sagemaker")
    touched = []
    for g in range(count):
        arn = sm.list_model_packages(ModelPackageGroupName=f"bench-group-{g:03d}", MaxResults=1)[
            "ModelPackageSummaryList"
        ][0]["ModelPackageArn"]
        spec = sm.describe_model_package(ModelPackageName=arn)["InferenceSpecification"]
        spec["Containers"][0]["Image"] = "1.dkr.ecr.eu-west-1.amazonaws.com/x:2"
        sm.update_model_package(ModelPackageArn=arn, InferenceSpecification=spec)
        touched.append(arn)
    return {"touched": touched}


def phase_sync(mode: str, threads: int) -> dict[str, Any]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    os.environ["SYNC_THREADS"] = str(threads)
    import django

    django.setup()
    from django.core.management import call_command

    from registry_app.models import ModelPackage

    if mode == "full-fallback":
        # As where IAM denies sagemaker:Search: the sync falls back to List + Describe.
        from registry_app.aws.errors import AccessDeniedError
        from registry_app.mirror import aws_requests

        def denied(*_: Any, **__: Any) -> Any:
            raise AccessDeniedError("Search: AccessDeniedException (benchmark)", operation="Search")

        aws_requests.search_package_pages = denied  # type: ignore[assignment]
        mode = "full"
    if mode == "full":
        call_command("migrate", verbosity=0)
    source, run, wall, queries = timed_sync(mode, region=REGION)
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
        "updated": ModelPackage.objects.filter(
            source=source, inference_specification__Containers__0__Image="1.dkr.ecr.eu-west-1.amazonaws.com/x:2"
        ).count(),
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
        elif name == "touch":
            result = phase_touch(int(rest[0]))
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
    fake = start_fake(port)
    try:
        report(args, env)
    finally:
        stop(fake)


def report(args: argparse.Namespace, env: dict[str, str]) -> None:
    n = args.groups * args.versions
    print(
        f"# sync benchmark: {args.groups} groups x {args.versions} versions = {n} packages, "
        f"threads={args.threads}, db={'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'sqlite'}, "
        "on the AWS-faithful fake"
    )
    seed = run_phase(__file__, env, "seed", str(args.groups), str(args.versions))
    print(f"seeded (and backdated a day) in {seed['seconds']} s")
    floor_ld = run_phase(__file__, env, "floor", "describe")
    floor_search = run_phase(__file__, env, "floor", "search")
    floor_list = run_phase(__file__, env, "floor", "listing")
    full = run_phase(__file__, env, "sync", "full", str(args.threads))
    incr = run_phase(__file__, env, "sync", "incremental", str(args.threads))
    touched = min(TOUCHED, args.groups)
    run_phase(__file__, env, "touch", str(touched))
    changed = run_phase(__file__, env, "sync", "incremental", str(args.threads))
    fallback = None
    if args.fallback:
        fb_env = dict(env, VAR_DIR=tempfile.mkdtemp(prefix="sync-bench-fb-"))
        if os.environ.get("DATABASE_URL"):
            fb_env.pop("DATABASE_URL")  # a fresh SQLite file: this must be a first sync too
        fallback = run_phase(__file__, fb_env, "sync", "full-fallback", str(args.threads))
    pages = -(-n // 100)
    group_pages = -(-args.groups // 100)
    # The strategy's bound: a creation-ordered Search per group (100 records a page, as on AWS), one S3 GET
    # per report, the group listing pages, one ListTags per group (tags are not in the listing), and the
    # provenance pass's one ListArtifacts per new package (its lineage artifact, issue 13).
    search_pages = args.groups * -(-args.versions // 100)
    bound = search_pages + n + group_pages + args.groups + n
    checks = {
        "full <= 1.2 x same-calls floor": full["wall_s"] <= 1.2 * floor_search["seconds"],
        "full calls <= bound + 10 %": full["total_calls"] <= 1.1 * bound,
        "no-change incremental: listing + <= 1 Search, no describe, no S3": incr["calls"]
        == {"ListModelPackages": pages, "Search": 1},
        f"content change to {touched}: <= 1 Search page, <= {touched} describes, all applied": (
            changed["calls"].get("Search", 0) <= 1
            and changed["calls"].get("DescribeModelPackage", 0) <= touched
            and "GetObject" not in changed["calls"]
            and changed["updated"] == touched
        ),
    }
    result = {
        "packages": n,
        "floor_list_describe_get_s": floor_ld["seconds"],
        "floor_same_calls_as_sync_s": floor_search["seconds"],
        "floor_same_calls": floor_search["calls"],
        "floor_listing_s": floor_list["seconds"],
        "full": full,
        "incremental_no_change": incr,
        "incremental_content_change": changed,
        "full_calls_vs_bound": round(full["total_calls"] / bound, 3),
        "full_wall_vs_floor_list_describe_get": round(full["wall_s"] / floor_ld["seconds"], 3),
        "full_wall_vs_floor_same_calls": round(full["wall_s"] / floor_search["seconds"], 3),
        "checks": checks,
    }
    print(json.dumps(result, indent=2))
    print("\n| figure | value |\n|---|---|")
    print(f"| packages | {n} |")
    print(f"| full sync wall | {full['wall_s']} s |")
    print(
        "| floor: bare sequential same calls (groups, tags, Search per group, GETs, ListArtifacts)"
        f" | {floor_search['seconds']} s |"
    )
    print(f"| full sync / same-calls floor | {result['full_wall_vs_floor_same_calls']} |")
    print(f"| floor: bare sequential list + describe + GET | {floor_ld['seconds']} s |")
    print(f"| full sync AWS time (summed over {args.threads} threads) | {full['aws_s_summed']} s |")
    print(f"| full sync AWS calls | {full['total_calls']} ({full['calls']}) |")
    print(
        "| strategy bound (Search pages per group + 1 GET per report + group pages + ListTags"
        f" + 1 ListArtifacts per package) | {bound} |"
    )
    print(f"| full calls / bound | {result['full_calls_vs_bound']} |")
    print(f"| full sync SQL queries | {full['sql_queries']} |")
    print(f"| full sync peak RSS | {full['rss_mb']} MB |")
    print(f"| no-change incremental wall | {incr['wall_s']} s (floor: listing + 1 Search {floor_list['seconds']} s) |")
    print(f"| no-change incremental AWS calls | {incr['total_calls']} ({incr['calls']}) |")
    print(f"| no-change incremental SQL queries | {incr['sql_queries']} |")
    print(f"| no-change incremental peak RSS | {incr['rss_mb']} MB |")
    print(f"| content-only change to {touched} packages: incremental wall | {changed['wall_s']} s |")
    print(f"| … its AWS calls | {changed['total_calls']} ({changed['calls']}); {changed['updated']} applied |")
    if fallback:
        bound_ld = pages + n + n + group_pages + args.groups
        print(
            f"| full sync without Search (List + Describe) wall | {fallback['wall_s']} s "
            f"({round(fallback['wall_s'] / floor_ld['seconds'], 3)} x the list+describe+GET floor) |"
        )
        print(
            f"| full sync without Search AWS calls | {fallback['total_calls']} ({fallback['calls']}); "
            f"bound {bound_ld} |"
        )
        print(f"| full sync without Search peak RSS | {fallback['rss_mb']} MB |")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}: {name}")


if __name__ == "__main__":
    main()
