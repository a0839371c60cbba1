"""Queue and review-page benchmark, and sign-off → registry latency (issue 3).

Part 1: 10,000 packages (2,000 pending) in 200 groups, one report with three metrics each,
20,000 sign-offs; server time (Django test client, in-process) and SQL queries of /queue/
(three tabs) and of review pages, compared with a small dataset to show the query count is
constant. Part 2: with a live Celery worker (separate process) and a loopback moto server,
the time from the final sign-off to the status visible in the registry (DescribeModelPackage).

    .venv/bin/python benchmarks/queue_bench.py [--packages 10000] [--latency-samples 10]

Uses DATABASE_URL / REDIS_URL when set (the broker is Redis then; else the embedded SQLite
broker, whose polling adds up to a second).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import ROOT, free_port, pct, run_phase, setup_django, start_moto, stop

REGION = "eu-west-1"
ROLES = ("ml-lead", "fairness", "compliance")


# --- part 1: pages -------------------------------------------------------------------------
def build_dataset(packages: int, signoffs: int) -> dict[str, Any]:
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.utils import timezone

    from registry_app.models import (
        Decision,
        EvaluationReport,
        Metric,
        ModelPackage,
        ModelPackageGroup,
        RegistrySource,
        SignOff,
    )

    call_command("migrate", verbosity=0)
    rng = random.Random(7)
    now = timezone.now()
    source = RegistrySource.objects.create(name="bench", region=REGION, account_id="111122223333")
    users: dict[str, list[User]] = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        users[role] = []
        for i in range(10):
            user = User.objects.create_user(f"{role}-{i}", f"{role}-{i}@example.com", "x")
            user.groups.add(group)
            users[role].append(user)
    groups_n = max(1, packages // 50)
    groups = ModelPackageGroup.objects.bulk_create(
        ModelPackageGroup(
            source=source,
            name=f"group-{g:03d}",
            arn=f"arn:aws:sagemaker:{REGION}:111122223333:model-package-group/group-{g:03d}",
            owner_account="111122223333",
            tags={"RiskTier": ("High", "Medium", "Low")[g % 3]},
        )
        for g in range(groups_n)
    )
    rows = []
    pending_target = packages // 5
    for i in range(packages):
        group = groups[i % groups_n]
        version = i // groups_n + 1
        status = "PendingManualApproval" if i >= packages - pending_target else ("Approved", "Rejected")[i % 2]
        rows.append(
            ModelPackage(
                source=source,
                group=group,
                arn=f"{group.arn.replace('model-package-group', 'model-package')}/{version}",
                version=version,
                approval_status=status,
                package_status="Completed",
                created_at=now - timezone.timedelta(hours=rng.randint(1, 400)),
                customer_metadata={"GitCommitSha": f"{i:07x}"},
                inference_specification={"Containers": [{"Image": "x", "ImageDigest": f"sha256:{i:064x}"}]},
            )
        )
    pkgs = ModelPackage.objects.bulk_create(rows, batch_size=2000)
    reports = EvaluationReport.objects.bulk_create(
        (
            EvaluationReport(
                package=p,
                slot="ModelQuality.Statistics",
                s3_uri=f"s3://b/{p.pk}.json",
                status="ok",
                kind="binary_classification",
                sha256=f"{p.pk:064x}",
            )
            for p in pkgs
        ),
        batch_size=2000,
    )
    Metric.objects.bulk_create(
        (
            Metric(report=r, package_id=r.package_id, name=name, value=rng.uniform(0.7, 0.95), kind=r.kind)
            for r in reports
            for name in ("auc", "accuracy", "f1")
        ),
        batch_size=5000,
    )
    decided = [p for p in pkgs if p.approval_status != "PendingManualApproval"]
    pending = [p for p in pkgs if p.approval_status == "PendingManualApproval"]
    sign_rows = []
    for p in decided:
        for role in ROLES:
            if len(sign_rows) >= signoffs - len(pending):
                break
            sign_rows.append(
                SignOff(package=p, user=rng.choice(users[role]), role=role, decision="approve", fingerprint="f" * 64)
            )
    for p in pending:  # the ML lead has signed every pending package: fairness and compliance remain
        sign_rows.append(
            SignOff(package=p, user=rng.choice(users["ml-lead"]), role="ml-lead", decision="approve", fingerprint="x")
        )
    SignOff.objects.bulk_create(sign_rows[:signoffs], batch_size=5000)
    Decision.objects.bulk_create(
        (Decision(package=p, kind="policy", status=p.approval_status, description="bench") for p in decided[:3000]),
        batch_size=2000,
    )
    return {
        "packages": len(pkgs),
        "pending": len(pending),
        "signoffs": SignOff.objects.count(),
        "reviewer": users["fairness"][0].pk,
        "pending_urls": [f"/packages/{p.group.name}/{p.version}/" for p in rng.sample(pending, min(30, len(pending)))],
    }


def time_pages(data: dict[str, Any], reps: int) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(User.objects.get(pk=data["reviewer"]))
    pages = {
        "/queue/ (mine)": ["/queue/"] * reps,
        "/queue/?tab=all": ["/queue/?tab=all"] * reps,
        "/queue/?tab=decided": ["/queue/?tab=decided"] * reps,
        "review page": (data["pending_urls"] * (reps // len(data["pending_urls"]) + 1))[:reps],
    }
    out = {}
    for label, urls in pages.items():
        client.get(urls[0])  # warm caches/templates
        times, queries = [], set()
        for url in urls:
            with CaptureQueriesContext(connection) as ctx:
                start = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            queries.add(len(ctx.captured_queries))
        out[label] = {
            "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(pct(times, 0.95), 1),
            "queries": sorted(queries),
        }
    return out


def phase_pages(packages: int, signoffs: int, reps: int) -> dict[str, Any]:
    setup_django()
    data = build_dataset(packages, signoffs)
    return {"dataset": {k: data[k] for k in ("packages", "pending", "signoffs")}, "pages": time_pages(data, reps)}


# --- part 2: latency -------------------------------------------------------------------------
def phase_latency(samples: int) -> dict[str, Any]:
    setup_django()
    import boto3
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from registry_app.mirror.execute import sync_source
    from registry_app.models import ModelPackage, RegistrySource
    from registry_app.review.signoffs import signoff_create

    call_command("migrate", verbosity=0)
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_model_package_group(ModelPackageGroupName="latency")
    arns = [
        sm.create_model_package(
            ModelPackageGroupName="latency",
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": "1.dkr.ecr.eu-west-1.amazonaws.com/x:1"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties={"owner": "bench"},
        )["ModelPackageArn"]
        for _ in range(samples)
    ]
    source = RegistrySource.objects.create(name="latency", region=REGION)
    sync_source(source, mode="full")
    users = {}
    for role in ROLES:
        user = User.objects.create_user(f"lat-{role}", f"lat-{role}@example.com", "x")
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        users[role] = user
    latencies = []
    for arn in arns:
        package = ModelPackage.objects.get(arn=arn)
        for role in ROLES[:-1]:
            signoff_create(user=users[role], package_id=package.pk, role=role, decision="approve", comment="ok")
        start = time.perf_counter()
        signoff_create(user=users[ROLES[-1]], package_id=package.pk, role=ROLES[-1], decision="approve", comment="ok")
        while sm.describe_model_package(ModelPackageName=arn).get("ModelApprovalStatus") != "Approved":
            if time.perf_counter() - start > 60:
                raise SystemExit(f"{arn} not Approved after 60 s")
            time.sleep(0.02)
        latencies.append(time.perf_counter() - start)
    return {
        "broker": settings.CELERY_BROKER_URL.split(":", 1)[0],
        "samples": len(latencies),
        "median_s": round(statistics.median(latencies), 3),
        "p95_s": round(pct(latencies, 0.95), 3),
        "max_s": round(max(latencies), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--signoffs", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--latency-samples", type=int, default=10)
    parser.add_argument("--phase", nargs="+")
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        if name == "pages":
            result = phase_pages(int(rest[0]), int(rest[1]), int(rest[2]))
        else:
            result = phase_latency(int(rest[0]))
        print(json.dumps(result))
        return

    base = dict(
        os.environ,
        DEBUG="true",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        LOG_LEVEL="ERROR",
        ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
    )
    if os.environ.get("DATABASE_URL"):
        raise SystemExit("run on the default SQLite (each phase needs its own fresh database)")
    small = run_phase(__file__, dict(base, VAR_DIR=tempfile.mkdtemp()), "pages", "100", "200", str(args.reps))
    large = run_phase(
        __file__,
        dict(base, VAR_DIR=tempfile.mkdtemp()),
        "pages",
        str(args.packages),
        str(args.signoffs),
        str(args.reps),
    )

    # Latency: moto server + a live Celery worker in their own processes.
    port = free_port()
    env = dict(base, VAR_DIR=tempfile.mkdtemp(), AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    bin_dir = Path(sys.executable).parent
    moto = start_moto(port)
    worker = None
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], env=env, cwd=ROOT, check=True)
        worker = subprocess.Popen(
            [str(bin_dir / "celery"), "-A", "governance", "worker", "-l", "warning", "--concurrency", "4"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(4)
        latency = run_phase(__file__, env, "latency", str(args.latency_samples))
    finally:
        for proc in (worker, moto):
            stop(proc)

    print(json.dumps({"small": small, "large": large, "latency": latency}, indent=2))
    print("\n| page | queries (small → large dataset) | median ms | p95 ms |\n|---|---|---|---|")
    for label, figures in large["pages"].items():
        print(
            f"| {label} | {small['pages'][label]['queries']} → {figures['queries']} | "
            f"{figures['median_ms']} | {figures['p95_ms']} |"
        )
    print(f"\ndataset: {large['dataset']}")
    print(
        f"final sign-off → Approved in the registry ({latency['broker']} broker, {latency['samples']} samples): "
        f"median {latency['median_s']} s, p95 {latency['p95_s']} s, max {latency['max_s']} s"
    )


if __name__ == "__main__":
    main()
