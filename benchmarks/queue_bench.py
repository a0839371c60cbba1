"""Queue and review-page benchmark, and sign-off → registry latency (issue 3).

Part 1 (pages): 10,000 packages (2,000 pending) in 200 groups, one report with three metrics
each, 20,000 sign-offs, on PostgreSQL (scratch databases ``<db-prefix>_*`` on DATABASE_URL's
server, else local; dropped at the end); server time (Django test client, in-process), SQL
queries and bytes of /queue/ (each tab, first page and 21st page, a filtered page, an htmx
"load more") and of other pages, compared with a 100-package dataset to show the query count is
constant.

Part 3 (http): the same data under gunicorn (4 workers x 2 threads, production settings)
against MLflow's registry server (``mlflow server``, 4 workers, PostgreSQL backend; from
``--mlflow-venv``, never a project dependency) holding 200 models x 50 versions, 2,000 tagged
``approval=pending``: p50 with a keep-alive client, interleaved, of our queue tabs and of MLflow's
pending-versions search (first 100); then req/s with ``--clients`` concurrent keep-alive clients.

Upkeep: what the stored review state adds to a sign-off, to a first full sync of 10,000
packages (the sync's own apply path, no AWS), and to a policy edit touching 2,000 packages.

Part 2 (latency): with a live Celery worker (separate process) and a loopback moto server, the
time from the final sign-off to the status visible in the registry (DescribeModelPackage).

    .venv/bin/python benchmarks/queue_bench.py [--packages 10000] [--skip http upkeep latency]

REDIS_URL (when set) is the broker of the latency part and the cache of gunicorn's; without it
the latency part uses the embedded SQLite broker (the demo's).
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
import threading
import time
from pathlib import Path
from typing import Any

from benchlib import ROOT, free_port, pct, run_phase, setup_django, start_fake, stop

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
    # Rows written in bulk bypass the services: derive their review state once, as migrate does.
    from registry_app.review.queue_state import review_state_verify

    started = time.perf_counter()
    check = review_state_verify(fix=True)
    return {
        "packages": len(pkgs),
        "pending": len(pending),
        "review_state_rows": check.checked,
        "review_state_backfill_s": round(time.perf_counter() - started, 2),
        "signoffs": SignOff.objects.count(),
        "reviewer": users["fairness"][0].pk,
        "pending_urls": [f"/packages/{p.group.name}/{p.version}/" for p in rng.sample(pending, min(30, len(pending)))],
    }


def _cursors(reviewer_id: int) -> dict[str, str]:
    """Cursors ~1,000 rows deep in each tab (the 21st page of 50)."""
    from django.contrib.auth.models import User

    from registry_app.review.queue import queue_page

    user = User.objects.get(pk=reviewer_id)
    out = {}
    for tab in ("mine", "all", "decided"):
        page = queue_page(user, tab=tab, limit=1000, count=False)
        out[tab] = page.items[-1].queue_key if tab != "decided" else page.items[-1].cursor
    return out


def time_pages(data: dict[str, Any], reps: int) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(User.objects.get(pk=data["reviewer"]))
    deep = _cursors(data["reviewer"])
    pages = {
        "/queue/ (mine)": ["/queue/"] * reps,
        "/queue/ (mine), page 21": [f"/queue/?after={deep['mine']}"] * reps,
        "/queue/?tab=all": ["/queue/?tab=all"] * reps,
        "/queue/?tab=all, page 21": [f"/queue/?tab=all&after={deep['all']}"] * reps,
        "/queue/?tab=all&role=compliance&sla=overdue": ["/queue/?tab=all&role=compliance&sla=overdue"] * reps,
        "/queue/?tab=decided": ["/queue/?tab=decided"] * reps,
        "/queue/?tab=decided, page 21": [f"/queue/?tab=decided&after={deep['decided']}"] * reps,
        "load more (htmx rows)": [f"/queue/?tab=all&after={deep['all']}&more=1"] * reps,
        "review page": (data["pending_urls"] * (reps // len(data["pending_urls"]) + 1))[:reps],
        "/groups/ (nav counts)": ["/groups/"] * reps,
    }
    out = {}
    for label, urls in pages.items():
        headers = {"HX-Request": "true"} if "htmx" in label else {}
        client.get(urls[0], headers=headers)  # warm caches/templates
        times, queries, sizes = [], set(), set()
        for url in urls:
            with CaptureQueriesContext(connection) as ctx:
                start = time.perf_counter()
                response = client.get(url, headers=headers)
                times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            queries.add(len(ctx.captured_queries))
            sizes.add(len(response.content))
        out[label] = {
            "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(pct(times, 0.95), 1),
            "queries": sorted(queries),
            "bytes": max(sizes),
        }
    return out


def phase_pages(packages: int, signoffs: int, reps: int) -> dict[str, Any]:
    setup_django()
    data = build_dataset(packages, signoffs)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # fresh planner statistics, as a production database has
            cursor.execute("VACUUM ANALYZE")
    keys = ("packages", "pending", "signoffs", "review_state_rows", "review_state_backfill_s")
    return {"dataset": {k: data[k] for k in keys}, "pages": time_pages(data, reps), "db": connection.vendor}


# --- upkeep: what keeping the stored state exact adds ------------------------------------------
def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _sync_bundles(source: Any, groups: int, versions: int, prefix: str) -> list[Any]:
    """Pre-fetched sync bundles (Describe records + one parsed report each): the sync's own code
    then applies them with no AWS call, so only the database work is timed."""
    from registry_app.mirror.fetch import Bundle, FetchedReport
    from registry_app.mirror.mapping import metrics_sources
    from registry_app.mirror.reports import parse as reports

    parsed = reports.parse_report(
        json.dumps({"binary_classification_metrics": {"auc": {"value": 0.9, "standard_deviation": 0.01}}}).encode()
    )
    bundles = []
    for g in range(groups):
        for v in range(1, versions + 1):
            arn = f"arn:aws:sagemaker:{REGION}:111122223333:model-package/{prefix}-{g:03d}/{v}"
            record = {
                "ModelPackageArn": arn,
                "ModelPackageGroupName": f"{prefix}-{g:03d}",
                "ModelPackageVersion": v,
                "ModelApprovalStatus": "PendingManualApproval" if v > versions * 4 // 5 else "Approved",
                "ModelPackageStatus": "Completed",
                "CreationTime": "2026-11-01T00:00:00+00:00",
                "InferenceSpecification": {"Containers": [{"Image": "x", "ImageDigest": f"sha256:{g:032x}{v:032x}"}]},
                "CustomerMetadataProperties": {"GitCommitSha": f"{v:07x}"},
                "ModelMetrics": {
                    "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"s3://b/{arn}.json"}}
                },
            }
            refs = metrics_sources(record["ModelMetrics"])
            fetched = [FetchedReport(ref, "ok", sha256=f"{g:032x}{v:032x}", size=80, parsed=parsed) for ref in refs]
            bundles.append(Bundle(arn, record, fetched))
    return bundles


def phase_upkeep(packages: int, signoffs: int, samples: int) -> dict[str, Any]:
    """The time the stored review state adds: to a sign-off, to a first full sync of ``packages``
    packages (20 % pending), and to a policy edit that changes every pending package's policy."""
    setup_django()
    from unittest import mock

    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.db.models.signals import post_save

    from registry_app.mirror.reconcile import RegistrySync
    from registry_app.models import ApprovalPolicy, ModelPackage, ModelPackageGroup, RegistrySource, ReviewState
    from registry_app.models.registry import ApprovalStatus
    from registry_app.review import receivers
    from registry_app.review.signoffs import signoff_create

    data = build_dataset(packages, signoffs)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    out: dict[str, Any] = {"dataset": {k: data[k] for k in ("packages", "pending", "review_state_backfill_s")}}

    # 1. A sign-off (fairness, not deciding), with and without the refresh, alternating.
    signers = list(User.objects.filter(groups__name="fairness"))
    extra = [User.objects.create_user(f"upkeep-fair-{i}", "", "x") for i in range(samples * 2)]
    for user in extra:
        user.groups.add(Group.objects.get(name="fairness"))
    targets = list(
        ModelPackage.objects.filter(approval_status=ApprovalStatus.PENDING).order_by("pk").values_list("pk", flat=True)
    )
    with_state, without = [], []
    with mock.patch("registry_app.review.signoffs.push_enqueue"):
        for n in range(samples * 2):
            refresh = n % 2 == 0
            patch = mock.patch("registry_app.review.signoffs.review_state_refresh") if not refresh else None
            if patch:
                patch.start()
            ms = _timed(
                lambda n=n: signoff_create(
                    user=extra[n], package_id=targets[n], role="fairness", decision="approve", comment="ok"
                )
            )
            (with_state if refresh else without).append(ms)
            if patch:
                patch.stop()
    del signers
    out["signoff_ms"] = {
        "with_refresh_median": round(statistics.median(with_state), 2),
        "without_median": round(statistics.median(without), 2),
        "added_median": round(statistics.median(with_state) - statistics.median(without), 2),
        "samples_each": samples,
    }

    # 2. A policy edit changing the policy of every pending package of the bench source (2,000).
    touched = ReviewState.objects.filter(source_name="bench").count()
    edits = {}
    for label, receiver in (("with_refresh", True), ("without", False)):
        if not receiver:
            post_save.disconnect(sender=ApprovalPolicy, dispatch_uid="review_state_policy_saved")
        spec = {"required_roles": {"ml-lead": 1, "compliance": 1} if receiver else {"fairness": 2}, "sla_hours": 48}
        with transaction.atomic():
            edits[label] = _timed(
                lambda spec=spec, label=label: ApprovalPolicy.objects.update_or_create(
                    name="bench-default", defaults={"is_default": True, "spec": {**spec, "name": label}}
                )
            )
        if not receiver:
            post_save.connect(
                receivers._policy_changed, sender=ApprovalPolicy, dispatch_uid="review_state_policy_saved"
            )
    out["policy_edit_ms"] = {
        "rows_touched": touched,
        "with_refresh": round(edits["with_refresh"], 1),
        "without": round(edits["without"], 1),
        "added": round(edits["with_refresh"] - edits["without"], 1),
    }
    # 3. A first full sync of ``packages`` packages (created, each with a report): the sync's own
    #    apply path (RegistrySync._process), with the review hooks, then on a second source without.
    groups, versions = max(1, packages // 50), 50
    timings = {}
    for label, prefix, hooks in (("with_hooks", "sync-a", True), ("without_hooks", "sync-b", False)):
        source = RegistrySource.objects.create(name=prefix, region=REGION, account_id="111122223333")
        bundles = _sync_bundles(source, groups, versions, prefix)
        # The groups exist, as after a full sync's group pass (an unknown group would be described).
        ModelPackageGroup.objects.bulk_create(
            ModelPackageGroup(
                source=source,
                name=f"{prefix}-{g:03d}",
                arn=f"arn:aws:sagemaker:{REGION}:111122223333:model-package-group/{prefix}-{g:03d}",
                status="Completed",
            )
            for g in range(groups)
        )
        syncer = RegistrySync(source, None, None)  # type: ignore[arg-type]  # applies bundles only
        syncer.load_groups()
        patches = (
            []
            if hooks
            else [
                mock.patch("registry_app.review.on_sync._refresh_safely"),
                mock.patch("registry_app.review.on_sync.packages_vanished"),
            ]
        )
        for p in patches:
            p.start()
        # Provenance (issue 13) makes AWS calls this bench has no client for, and is not what it measures.
        with (
            mock.patch("registry_app.notifications.enqueue.enqueue_review_requested"),
            mock.patch("registry_app.mirror.apply.mirror_provenance"),
        ):
            timings[label] = _timed(lambda s=syncer, b=bundles: s._process(iter(b))) / 1000
        for p in patches:
            p.stop()
    rows = ReviewState.objects.filter(source_name="sync-a").count()
    out["full_sync_s"] = {
        "packages": groups * versions,
        "pending_rows_written": rows,
        "with_hooks": round(timings["with_hooks"], 1),
        "without_hooks": round(timings["without_hooks"], 1),
        "added": round(timings["with_hooks"] - timings["without_hooks"], 1),
        "added_per_package_ms": round(
            1000 * (timings["with_hooks"] - timings["without_hooks"]) / (groups * versions), 2
        ),
    }

    return out


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


# --- part 3: under gunicorn, against MLflow's registry server ----------------------------------
MLFLOW_SEARCH = "/api/2.0/mlflow/model-versions/search"
MLFLOW_FILTER = "tags.approval = 'pending'"


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group ``pgid`` (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after the command: state, ppid, pgrp, ..., utime (12), stime (13)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def start_mlflow(venv: Path, db_url: str, port: int, workers: int, tmp: Path) -> subprocess.Popen[bytes]:
    url = db_url.replace("postgres://", "postgresql+psycopg://", 1)
    log = open(tmp / "mlflow.log", "ab")  # noqa: SIM115 - kept open for the server's lifetime
    proc = subprocess.Popen(
        [str(venv / "bin" / "mlflow"), "server", "--backend-store-uri", url, "--host", "127.0.0.1"]
        + ["--port", str(port), "--workers", str(workers), "--default-artifact-root", str(tmp / "mlflow-artifacts")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=tmp,
    )
    import requests

    for _ in range(600):
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.5)
    raise SystemExit(f"mlflow server did not start; see {tmp / 'mlflow.log'}")


def seed_mlflow(base: str, models: int, versions: int, pending: int) -> dict[str, Any]:
    """``models`` registered models with ``versions`` versions each; the newest ``pending`` of all
    (the same share as ours, spread over the models) tagged ``approval=pending``, the rest approved."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    local = threading.local()

    def session() -> Any:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    def post(path: str, body: dict[str, Any]) -> None:
        response = session().post(f"{base}/api/2.0/mlflow/{path}", json=body, timeout=60)
        response.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda m: post("registered-models/create", {"name": f"group-{m:03d}"}), range(models)))
        per_model = pending // models

        def versions_of(m: int) -> None:
            for v in range(1, versions + 1):
                state = "pending" if v > versions - per_model else "approved"
                post(
                    "model-versions/create",
                    {
                        "name": f"group-{m:03d}",
                        "source": f"s3://bench/group-{m:03d}/{v}/model.tar.gz",
                        "tags": [{"key": "approval", "value": state}, {"key": "risk", "value": "High"}],
                    },
                )

        list(pool.map(versions_of, range(models)))
    return {
        "models": models,
        "versions": models * versions,
        "pending": per_model * models,
        "seed_s": round(time.perf_counter() - started, 1),
    }


def _sequential(calls: dict[str, Any], reps: int) -> dict[str, dict[str, float]]:
    """Each call ``reps`` times, interleaved (so a noisy neighbour slows them alike); client-side ms."""
    times: dict[str, list[float]] = {label: [] for label in calls}
    sizes: dict[str, int] = {}
    for call in calls.values():
        call()  # warm up (connections, caches)
    for _ in range(reps):
        for label, call in calls.items():
            start = time.perf_counter()
            sizes[label] = call()
            times[label].append((time.perf_counter() - start) * 1000)
    return {
        label: {"p50_ms": round(statistics.median(t), 1), "p95_ms": round(pct(t, 0.95), 1), "bytes": sizes[label]}
        for label, t in times.items()
    }


def _throughput(make_call: Any, clients: int, seconds: float, pgid: int) -> dict[str, float]:
    """``clients`` threads, each with its own keep-alive session, calling as fast as answered."""
    done = [0] * clients
    errors = [0] * clients
    stop_at = time.perf_counter() + seconds

    def worker(n: int) -> None:
        call = make_call()
        while time.perf_counter() < stop_at:
            try:
                call()
                done[n] += 1
            except Exception:  # noqa: BLE001 - counted
                errors[n] += 1

    cpu_before = group_cpu_seconds(pgid)
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    cpu = group_cpu_seconds(pgid) - cpu_before
    served = max(1, sum(done))
    return {
        "rps": round(sum(done) / wall, 1),
        "errors": sum(errors),
        "server_cpu_ms_per_request": round(1000 * cpu / served, 1),
    }


def http_compare(args: argparse.Namespace, db_url: str, mlflow_db: str, tmp: Path) -> dict[str, Any]:
    import requests
    from benchlib import browser_login, kill_group, stack_env, start_gunicorn

    web_port, ml_port = free_port(), free_port()
    site = f"http://127.0.0.1:{web_port}"
    env = stack_env(
        tmp, site, 6379, REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/6"), DATABASE_URL=db_url
    )
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True
    )
    web = mlflow = None
    try:
        web = start_gunicorn(env, web_port, args.web_workers, args.web_threads, tmp / "gunicorn.log")
        mlflow = start_mlflow(Path(args.mlflow_venv), mlflow_db, ml_port, args.mlflow_workers, tmp)
        ml = f"http://127.0.0.1:{ml_port}"
        seeded = seed_mlflow(ml, args.packages // 50, 50, args.packages // 5)
        import psycopg

        with psycopg.connect(mlflow_db, autocommit=True) as conn:  # planner statistics, as for ours
            conn.execute("VACUUM ANALYZE")

        def ours(path: str) -> Any:
            session = requests.Session()
            assert browser_login(session, site, "fairness-0", "x"), "login failed"

            def call() -> int:
                response = session.get(f"{site}{path}", timeout=60)
                response.raise_for_status()
                return len(response.content)

            return call

        def theirs() -> Any:
            session = requests.Session()
            params = {"filter": MLFLOW_FILTER, "max_results": 100}

            def call() -> int:
                response = session.get(f"{ml}{MLFLOW_SEARCH}", params=params, timeout=60)
                response.raise_for_status()
                assert len(response.json()["model_versions"]) == 100
                return len(response.content)

            return call

        latency = _sequential(
            {
                "ours: /queue/ (mine)": ours("/queue/"),
                "ours: /queue/?tab=all": ours("/queue/?tab=all"),
                "mlflow: pending-versions search (100)": theirs(),
            },
            args.http_reps,
        )
        rounds: dict[str, list[dict[str, float]]] = {"ours": [], "mlflow": []}
        for _ in range(2):  # alternating rounds, so both see the same neighbours
            rounds["ours"].append(
                _throughput(lambda: ours("/queue/?tab=all"), args.clients, args.http_seconds, web.pid)
            )
            rounds["mlflow"].append(_throughput(theirs, args.clients, args.http_seconds, mlflow.pid))
        throughput = {
            side: {k: round(statistics.mean(r[k] for r in runs), 1) for k in runs[0]} for side, runs in rounds.items()
        }
        theirs_p50 = latency["mlflow: pending-versions search (100)"]["p50_ms"]
        return {
            "mlflow": seeded,
            "latency": latency,
            "throughput": throughput,
            "clients": args.clients,
            "ratios": {
                "mine_p50_over_mlflow": round(latency["ours: /queue/ (mine)"]["p50_ms"] / theirs_p50, 3),
                "all_p50_over_mlflow": round(latency["ours: /queue/?tab=all"]["p50_ms"] / theirs_p50, 3),
                "rps_over_mlflow": round(throughput["ours"]["rps"] / max(0.1, throughput["mlflow"]["rps"]), 2),
            },
            "loadavg_1m": round(os.getloadavg()[0], 1),
        }
    finally:
        kill_group(web, 15)
        kill_group(mlflow, 15)


def _print(result: dict[str, Any]) -> None:
    if "large" in result:
        _print_pages(result["small"], result["large"])
    _print_rest(result)


def _print_pages(small: dict[str, Any], large: dict[str, Any]) -> None:
    print(f"\n### pages, server time in-process ({large['db']}; {large['dataset']})")
    print("| page | queries (small → large) | p50 ms | p95 ms | bytes |\n|---|---|---:|---:|---:|")
    for label, f in large["pages"].items():
        print(
            f"| {label} | {small['pages'][label]['queries']} → {f['queries']} | {f['median_ms']} | "
            f"{f['p95_ms']} | {f['bytes']:,} |"
        )


def _print_rest(result: dict[str, Any]) -> None:
    http = result.get("http")
    if http:
        print(f"\n### under gunicorn vs MLflow {http['mlflow']} (load average {http['loadavg_1m']})")
        print("| request | p50 ms | p95 ms | bytes |\n|---|---:|---:|---:|")
        for label, f in http["latency"].items():
            print(f"| {label} | {f['p50_ms']} | {f['p95_ms']} | {f['bytes']:,} |")
        for side, f in http["throughput"].items():
            print(
                f"{side}: {f['rps']} req/s with {http['clients']} clients, {f['errors']} errors, "
                f"server CPU {f['server_cpu_ms_per_request']} ms/request"
            )
        print(f"ratios: {http['ratios']}")
    upkeep = result.get("upkeep")
    if upkeep:
        print(f"\n### upkeep: {json.dumps({k: v for k, v in upkeep.items() if k != 'dataset'})}")
    latency = result.get("latency")
    if latency:
        print(
            f"\nfinal sign-off → Approved in the registry ({latency['broker']} broker, {latency['samples']} samples): "
            f"median {latency['median_s']} s, p95 {latency['p95_s']} s, max {latency['max_s']} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--signoffs", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--latency-samples", type=int, default=10)
    parser.add_argument("--upkeep-samples", type=int, default=20)
    parser.add_argument("--mlflow-venv", default="/work/mlflow-venv", help="a virtualenv with mlflow and psycopg")
    parser.add_argument("--mlflow-workers", type=int, default=4)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--web-threads", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--http-reps", type=int, default=100)
    parser.add_argument("--http-seconds", type=float, default=15)
    parser.add_argument("--db-prefix", default="gov_reviewstate_qb")
    parser.add_argument("--skip", nargs="*", default=[], choices=["pages", "http", "upkeep", "latency"])
    parser.add_argument("--phase", nargs="+")
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        if name == "pages":
            result = phase_pages(int(rest[0]), int(rest[1]), int(rest[2]))
        elif name == "upkeep":
            result = phase_upkeep(int(rest[0]), int(rest[1]), int(rest[2]))
        else:
            result = phase_latency(int(rest[0]))
        print(json.dumps(result))
        return

    from benchlib import exit_on_sigterm, pg_drop, pg_scratch

    exit_on_sigterm()
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
    tmp = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    dbs = {name: pg_scratch(f"{args.db_prefix}_{name}") for name in ("small", "large", "upkeep", "mlflow")}
    result: dict[str, Any] = {}
    if "pages" in args.skip:
        args.skip.append("http")  # it serves the pages part's database
    try:
        if "pages" not in args.skip:
            result["small"] = run_phase(
                __file__,
                dict(base, VAR_DIR=tempfile.mkdtemp(), DATABASE_URL=dbs["small"]),
                "pages",
                "100",
                "200",
                str(args.reps),
            )
            result["large"] = run_phase(
                __file__,
                dict(base, VAR_DIR=tempfile.mkdtemp(), DATABASE_URL=dbs["large"]),
                "pages",
                str(args.packages),
                str(args.signoffs),
                str(args.reps),
            )
            _partial(result, "small", "large")
        if "http" not in args.skip:
            result["http"] = http_compare(args, dbs["large"], dbs["mlflow"], tmp)
            _partial(result, "http")
        if "upkeep" not in args.skip:
            result["upkeep"] = run_phase(
                __file__,
                dict(base, VAR_DIR=tempfile.mkdtemp(), DATABASE_URL=dbs["upkeep"]),
                "upkeep",
                str(args.packages),
                str(args.signoffs),
                str(args.upkeep_samples),
            )
            _partial(result, "upkeep")
        if "latency" not in args.skip:
            result["latency"] = latency_run(base, args.latency_samples)
    finally:
        for url in dbs.values():
            pg_drop(url)
    print(json.dumps(result, indent=2))
    _print(result)


def _partial(result: dict[str, Any], *parts: str) -> None:
    """Each part's figures as soon as they exist: a later part's failure loses nothing."""
    print(json.dumps({part: result[part] for part in parts}), flush=True)


def latency_run(base: dict[str, str], samples: int) -> dict[str, Any]:
    """Part 2: moto server + a live Celery worker in their own processes; the broker is Redis when
    REDIS_URL is set, else the embedded SQLite broker (the demo's)."""
    port = free_port()
    env = dict(base, VAR_DIR=tempfile.mkdtemp(), AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    env.pop("DATABASE_URL", None)
    bin_dir = Path(sys.executable).parent
    moto = start_fake(port)
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
        return run_phase(__file__, env, "latency", str(samples))
    finally:
        for proc in (worker, moto):
            stop(proc)


if __name__ == "__main__":
    main()
