"""Load benchmark: gunicorn + PostgreSQL + a Celery worker on Redis, driven by locust on loopback.

The stack, all on 127.0.0.1 and all started (and stopped) by this script:

* a scratch PostgreSQL database ``h6_load_<pid>`` (created, dropped at the end unless --keep-db);
* a private Redis (``redis-server --port 6391``, no persistence) as broker and cache;
* a moto server standing in for SageMaker, reached by the worker through ``AWS_ENDPOINT_URL``;
* gunicorn (``governance.wsgi``, 4 workers x 2 threads, ``DEBUG`` off, collected static files);
* a Celery worker (``celery -A governance worker``) consuming every queue the settings name;
* locust, headless: 50 browsing users and 5 signing users (benchmarks/locustfile.py).

Data: queue_bench.build_dataset (10,000 packages in 200 groups, 2,000 pending, reports, metrics,
20,000 sign-offs), 1,000,000 CloudTrail events written through the ingest service's own writer
(``cloudtrail_ingest.store_records``, records from audit_bench.make_record aimed at those
packages), endpoint deployments rebuilt from them, and 200 pending packages created in moto and
mirrored by a real full sync, for the signers (their decisions are pushed by the worker).

    .venv/bin/python benchmarks/load_bench.py [--quick] [--packages 10000] [--events 1000000]
        [--users 55] [--signers 5] [--duration 60] [--keep-db]

Prints a table (req/s, median and p95 per page, errors) and a final JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchlib import (
    ROOT,
    celery_queues,
    exit_on_sigterm,
    free_port,
    kill_group,
    pg_drop,
    pg_scratch,
    run_phase,
    setup_django,
    stack_env,
    start_fake,
    start_gunicorn,
    start_redis,
    start_worker,
    stop,
    stop_redis,
)

REDIS_PORT = 6391
PASSWORD = "load-bench-password-42"
LIVE_REGION = "us-east-1"
SIGNER_ROLES = ("ml-lead", "fairness", "compliance", "ml-lead", "fairness")
BROWSER_ROLES = ("ml-lead", "fairness", "compliance")


# --------------------------------------------------------------------------------------------- seeding


def seed_events(total: int) -> dict[str, Any]:
    """``total`` CloudTrail records (audit_bench's mix) about the dataset's packages, stored by
    the ingest service's writer in 20,000-record transactions; then the deployment rebuild."""
    import audit_bench
    from django.db import transaction

    from registry_app.audit.deployments import rebuild_after_ingest
    from registry_app.audit.ingest_linker import Linker
    from registry_app.audit.ingest_writer import StoreStats, store_records
    from registry_app.models import CloudTrailEvent, RegistrySource

    source = RegistrySource.objects.get(name="bench")
    audit_bench.ACCOUNT = source.account_id  # the records name the dataset's account ...
    renamed = {"bench-group-": "group-"}  # ... and its groups (group-000 .. group-199, 50 versions each)

    def aim(value: Any) -> Any:
        if isinstance(value, str):
            for old, new in renamed.items():
                value = value.replace(old, new)
            return value
        if isinstance(value, dict):
            return {k: aim(v) for k, v in value.items()}
        if isinstance(value, list):
            return [aim(v) for v in value]
        return value

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = now - dt.timedelta(days=audit_bench.DAYS)
    step = (now - first - dt.timedelta(hours=1)) / max(1, total)
    linker = Linker(source)
    stats = StoreStats()
    started = time.perf_counter()
    chunk = 20_000
    for lo in range(0, total, chunk):
        records = []
        for i in range(lo, min(total, lo + chunk)):
            record = audit_bench.make_record(i, first + step * i)
            record["requestParameters"] = aim(record["requestParameters"])
            record["responseElements"] = aim(record["responseElements"])
            records.append(record)
        with transaction.atomic():
            store_records(source, records, via=CloudTrailEvent.Via.S3, linker=linker, fallback_time=now, stats=stats)
    stored_s = time.perf_counter() - started
    rebuilt = rebuild_after_ingest(source, endpoints=stats.endpoints, configs=stats.configs, models=stats.models)
    return {
        "events": CloudTrailEvent.objects.count(),
        "linked_to_package": CloudTrailEvent.objects.filter(package__isnull=False).count(),
        "store_s": round(stored_s, 1),
        "events_per_s": round(stats.inserted / stored_s) if stored_s else 0,
        "deployments_rebuilt": len(rebuilt),
        "rebuild_s": round(time.perf_counter() - started - stored_s, 1),
    }


def seed_live(groups: int, per_group: int) -> dict[str, Any]:
    """Pending packages in moto (LIVE_REGION), mirrored by a real full sync: the signers' work."""
    import boto3

    from registry_app.mirror.execute import sync_source
    from registry_app.models import RegistrySource

    sm = boto3.client("sagemaker", region_name=LIVE_REGION)
    names = [f"live-{g:03d}" for g in range(groups)]
    for name in names:
        sm.create_model_package_group(ModelPackageGroupName=name, ModelPackageGroupDescription="load bench")
        for v in range(per_group):
            sm.create_model_package(
                ModelPackageGroupName=name,
                ModelApprovalStatus="PendingManualApproval",
                ModelPackageDescription=f"{name} v{v + 1}",
                InferenceSpecification={
                    "Containers": [{"Image": f"1.dkr.ecr.{LIVE_REGION}.amazonaws.com/x:{v}"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                CustomerMetadataProperties={"GitCommitSha": f"{v:07x}", "owner": "load-bench"},
            )
    source = RegistrySource.objects.create(name="live", region=LIVE_REGION)
    run = sync_source(source, mode="full")
    return {"live_groups": names, "live_packages": groups * per_group, "live_sync": run.status}


def seed_users(browsers: int, signers: int) -> dict[str, list[str]]:
    from django.contrib.auth.models import Group, User

    def make(name: str, role: str) -> str:
        user = User.objects.create_user(name, f"{name}@bench.example", PASSWORD)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        return name

    return {
        "browsers": [make(f"browser-{i:02d}", BROWSER_ROLES[i % 3]) for i in range(browsers)],
        "signers": [make(f"signer-{i}", SIGNER_ROLES[i % len(SIGNER_ROLES)]) for i in range(signers)],
    }


def phase_seed(packages: int, events: int, live_groups: int, live_per_group: int, browsers: int, signers: int) -> Any:
    setup_django()
    import audit_bench
    from queue_bench import build_dataset

    from registry_app.models import ModelPackage, ModelPackageGroup

    started = time.perf_counter()
    dataset = build_dataset(packages, 2 * packages)
    dataset_s = time.perf_counter() - started
    audit = seed_events(events)
    live = seed_live(live_groups, live_per_group)
    users = seed_users(browsers, signers)
    from django.db import connection

    with connection.cursor() as cursor:  # fresh statistics for the planner, as a production database has
        cursor.execute("VACUUM ANALYZE")

    rng = random.Random(11)
    bench = list(ModelPackage.objects.filter(source__name="bench").values_list("group__name", "version"))
    sample = rng.sample(bench, min(300, len(bench)))
    groups = list(ModelPackageGroup.objects.filter(source__name="bench").values_list("name", flat=True))
    endpoints = [f"bench-ep-{i}" for i in range(audit_bench.ENDPOINTS)]
    now = dt.datetime.now(dt.UTC)
    moments = [(now - dt.timedelta(days=d)).strftime("%Y-%m-%dT%H:%M") for d in (1, 7, 30, 90, 150)]
    data = {
        "password": PASSWORD,
        **users,
        "live_groups": live["live_groups"],
        "review_urls": [f"/packages/{g}/{v}/?source=bench" for g, v in sample],
        "timeline_urls": [f"/packages/{g}/{v}/audit/?source=bench" for g, v in sample],
        "group_urls": [f"/groups/{g}/?source=bench" for g in rng.sample(groups, min(100, len(groups)))],
        "endpoint_urls": [f"/endpoints/{e}/" for e in endpoints],
        "audit_urls": [f"/audit/?actor={p}" for p in audit_bench.PEOPLE[:20]],
        "as_of_urls": [f"/as-of/?endpoint={e}&at={m}" for e in endpoints[:10] for m in moments],
    }
    return {
        "data": data,
        "dataset": {k: dataset[k] for k in ("packages", "pending", "signoffs")},
        "dataset_s": round(dataset_s, 1),
        "audit": audit,
        "live": {k: v for k, v in live.items() if k != "live_groups"},
        "seed_s": round(time.perf_counter() - started, 1),
    }


def phase_settle(wait_s: int) -> dict[str, Any]:
    """Wait for the signers' pushes to leave pending/sending; count sign-offs, decisions, pushes."""
    setup_django()
    from django.db.models import Count

    from registry_app.models import Decision, PushOutbox, SignOff

    live = PushOutbox.objects.filter(package__source__name="live")
    deadline = time.monotonic() + wait_s
    while live.filter(state__in=("pending", "sending")).exists() and time.monotonic() < deadline:
        time.sleep(1)
    return {
        "signoffs": SignOff.objects.filter(package__source__name="live").count(),
        "decisions": Decision.objects.filter(package__source__name="live").count(),
        "pushes": dict(live.values_list("state").annotate(n=Count("pk")).order_by("state")),
    }


# --------------------------------------------------------------------------------------------- driver


def read_stats(prefix: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows, total = [], {}
    with open(f"{prefix}_stats.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            item = {
                "page": row["Name"] if row["Name"] != "Aggregated" else "all requests",
                "method": row["Type"],
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "median_ms": float(row["Median Response Time"] or 0),
                "p95_ms": float(row["95%"] or 0) if row["95%"] != "N/A" else 0.0,
                "rps": round(float(row["Requests/s"] or 0), 2),
            }
            (rows.append(item) if row["Name"] != "Aggregated" else total.update(item))
    return rows, total


def read_failures(prefix: Path) -> list[dict[str, str]]:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [dict(r) for r in csv.DictReader(handle)][:10]


def drain(queues: list[str], port: int = REDIS_PORT, limit_s: float = 300) -> float:
    """Let the worker finish the tasks the seeding queued (review-request emails and such) before
    the load starts, so they do not compete with it; returns how long that took."""
    import redis

    client = redis.Redis(port=port)
    started = time.perf_counter()
    quiet = 0
    while quiet < 3 and time.perf_counter() - started < limit_s:
        busy = sum(int(client.llen(q)) for q in queues) + int(client.hlen("unacked") or 0)
        quiet = quiet + 1 if busy == 0 else 0
        time.sleep(1)
    return round(time.perf_counter() - started, 1)


def probe(site: str, data: dict[str, Any], reps: int) -> dict[str, dict[str, float]]:
    """Each page alone: one logged-in client, ``reps`` sequential requests per page (service time
    without queueing, on the same dataset, after the load)."""
    import requests
    from benchlib import browser_login

    session = requests.Session()
    browser_login(session, site, data["browsers"][1], data["password"])
    pages = {
        "/queue/ (mine)": ["/queue/"],
        "/queue/?tab=all": ["/queue/?tab=all"],
        "/queue/?tab=decided": ["/queue/?tab=decided"],
        "review page": data["review_urls"],
        "/groups/": ["/groups/"],
        "group page": data["group_urls"],
        "package timeline": data["timeline_urls"],
        "endpoint timeline": data["endpoint_urls"],
        "/audit/ search": data["audit_urls"],
        "/as-of/": data["as_of_urls"],
    }
    out = {}
    for label, urls in pages.items():
        times = []
        for i in range(reps):
            started = time.perf_counter()
            response = session.get(f"{site}{urls[i % len(urls)]}", timeout=120)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
        out[label] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
    return out


# The Browser's task weights (locustfile.py), to weigh each page's time alone.
BROWSER_WEIGHTS = {
    "/queue/ (mine)": 3,
    "/queue/?tab=all": 2,
    "/queue/?tab=decided": 1,
    "review page": 4,
    "/groups/": 1,
    "group page": 2,
    "package timeline": 2,
    "endpoint timeline": 1,
    "/audit/ search": 1,
    "/as-of/": 1,
}


def demand_without_queueing(browsers: int, signers: int, alone: dict[str, dict[str, float]]) -> float:
    """Requests per second the users ask for when no request waits for another (a closed system:
    each user thinks, then waits for one answer): browsers think 0.5-1.5 s (1 s on average) between
    requests, signers 1-2 s between rounds of 3 requests; answers take what each page takes alone."""
    weighted = sum(w * alone.get(page, {}).get("median_ms", 0.0) for page, w in BROWSER_WEIGHTS.items())
    answer_s = weighted / sum(BROWSER_WEIGHTS.values()) / 1000
    return browsers / (1.0 + answer_s) + signers * 3 / (1.5 + 3 * answer_s)


def cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


class CpuSampler(threading.Thread):
    """Samples, every half second, the CPU seconds used so far by gunicorn (all its processes) and by
    the PostgreSQL backends serving the scratch database, so the measured window's share is known."""

    def __init__(self, web_pid: int, db_name: str) -> None:
        super().__init__(daemon=True)
        self.web_pid, self.db_name = web_pid, db_name
        self.samples: list[tuple[float, float, float]] = []
        self.done = threading.Event()

    def _pg(self) -> float:
        import psutil

        total = 0.0
        for proc in psutil.process_iter(["cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if line.startswith("postgres:") and f" {self.db_name} " in line:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total += times.user + times.system
        return total

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.samples.append((time.time(), cpu_seconds([self.web_pid]), self._pg()))

    def between(self, start: float, end: float) -> tuple[float, float]:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return 0.0, 0.0
        return inside[-1][1] - inside[0][1], inside[-1][2] - inside[0][2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes in all)")
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=55, help="locust users in all (signers included)")
    parser.add_argument("--signers", type=int, default=5)
    parser.add_argument("--spawn-rate", type=int, default=10)
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--live-groups", type=int, default=20)
    parser.add_argument("--live-per-group", type=int, default=10)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--web-threads", type=int, default=2)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--db-name", default="", help="scratch database name (default h6_load_<pid>)")
    parser.add_argument("--redis-port", type=int, default=REDIS_PORT, help="the private Redis's port")
    parser.add_argument("--phase", nargs="+")
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        result = phase_seed(*(int(x) for x in rest)) if name == "seed" else phase_settle(int(rest[0]))
        print(json.dumps(result, default=str))
        return
    if args.quick:
        args.packages, args.events, args.duration, args.live_groups, args.live_per_group = 500, 20_000, 20, 5, 6

    exit_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="h6-load-"))
    moto_port, web_port = free_port(), free_port()
    site = f"http://127.0.0.1:{web_port}"
    env = stack_env(
        tmp,
        site,
        args.redis_port,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto_port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=LIVE_REGION,
    )
    db = pg_scratch(args.db_name or f"h6_load_{os.getpid()}")
    env["DATABASE_URL"] = db
    size = f"{args.packages:,} packages, {args.events:,} audit events"
    print(f"# load benchmark: {size}, {args.users} users ({args.signers} signing) for {args.duration} s; db {db}")
    start_redis(args.redis_port, str(tmp))
    moto = web = worker = None
    try:
        moto = start_fake(moto_port)
        seed_env = dict(env, DEBUG="true")  # seeding runs migrations and bulk writes in one process
        seed = run_phase(
            __file__,
            seed_env,
            "seed",
            *map(str, (args.packages, args.events, args.live_groups, args.live_per_group, args.users, args.signers)),
        )
        data_path = tmp / "data.json"
        data_path.write_text(json.dumps(seed.pop("data")))
        print(json.dumps({"seed": seed}, indent=2))
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True
        )

        queues = celery_queues(env)
        worker = start_worker(env, queues, 2, tmp / "worker.log")
        drained_s = drain(queues, args.redis_port)
        web = start_gunicorn(env, web_port, args.web_workers, args.web_threads, tmp / "gunicorn.log")
        load_before = os.getloadavg()
        import psutil

        psutil.cpu_percent(None)
        sampler = CpuSampler(web.pid, db.rpartition("/")[2])
        sampler.start()
        before = {"web": cpu_seconds([web.pid]), "worker": cpu_seconds([worker.pid])}
        prefix = tmp / "load"
        import resource

        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        locust = subprocess.run(
            [str(Path(sys.executable).parent / "locust"), "-f", str(ROOT / "benchmarks" / "locustfile.py")]
            + ["--headless", "-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.duration + 600}s"]
            + ["--host", site, "--csv", str(prefix), "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING"],
            env=dict(
                env,
                LOAD_BENCH_DATA=str(data_path),
                LOAD_BENCH_SIGNERS=str(args.signers),
                LOAD_BENCH_USERS=str(args.users),
                LOAD_BENCH_DURATION=str(args.duration),
                LOAD_BENCH_WINDOW_OUT=str(tmp / "window.json"),
                LOAD_BENCH_SIGNER_OUT=str(tmp / "signers.json"),
            ),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        machine_cpu = psutil.cpu_percent(None)
        load_after = os.getloadavg()
        gen = resource.getrusage(resource.RUSAGE_CHILDREN)  # the only child reaped meanwhile: locust
        cpu = {
            "web_s": round(cpu_seconds([web.pid]) - before["web"], 1),
            "worker_s": round(cpu_seconds([worker.pid]) - before["worker"], 1),
            "locust_s": round(gen.ru_utime + gen.ru_stime - reaped.ru_utime - reaped.ru_stime, 1),
        }
        if locust.returncode not in (0, 1):  # 1: some requests failed (reported below)
            raise SystemExit(f"locust failed ({locust.returncode}):\n{locust.stdout[-3000:]}\n{locust.stderr[-3000:]}")
        sampler.done.set()
        rows, total = read_stats(prefix)
        window = json.loads((tmp / "window.json").read_text()) if (tmp / "window.json").exists() else {}
        web_cpu, pg_cpu = sampler.between(window.get("start", 0), window.get("end", 0))
        served = max(1, int(total.get("requests") or 0))
        cost_ms = {"gunicorn": round(1000 * web_cpu / served, 1), "postgres": round(1000 * pg_cpu / served, 1)}
        capacity = round((os.cpu_count() or 2) * 1000 / max(0.1, cost_ms["gunicorn"] + cost_ms["postgres"]), 1)
        signers = json.loads((tmp / "signers.json").read_text()) if (tmp / "signers.json").exists() else {}
        settle = run_phase(__file__, env, "settle", "120")
        alone = probe(site, json.loads(data_path.read_text()), 5)
        demand = round(demand_without_queueing(args.users - args.signers, args.signers, alone), 1)
        result = {
            "packages": args.packages,
            "audit_events": seed["audit"]["events"],
            "users": args.users,
            "signers": args.signers,
            "duration_s": args.duration,
            "wall_s": round(wall, 1),
            "gunicorn": f"{args.web_workers} workers x {args.web_threads} threads",
            "celery_queues": queues,
            "throughput_rps": total.get("rps"),
            "demand_rps_without_queueing": demand,
            "requests": total.get("requests"),
            "errors": total.get("failures"),
            "median_ms": total.get("median_ms"),
            "p95_ms": total.get("p95_ms"),
            "pages": rows,
            "failures": read_failures(prefix),
            "signer_outcomes": signers,
            "page_alone": alone,
            "after_load": settle,
            "machine_cpu_percent": machine_cpu,
            "cpu_ms_per_request": cost_ms,
            "idle_machine_capacity_rps_estimate": capacity,
            "loadavg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "seed_tasks_drained_s": drained_s,
            "cpu_seconds": cpu,
        }
        print("\n| page | requests | req/s | median ms | p95 ms | errors | alone: median ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for row in sorted(rows, key=lambda r: -r["requests"]):
            print(
                f"| {row['method']} {row['page']} | {row['requests']:,} | {row['rps']} | {row['median_ms']:.0f} | "
                f"{row['p95_ms']:.0f} | {row['failures']} | {alone.get(row['page'], {}).get('median_ms', '')} |"
            )
        print(
            f"| **all** | **{total.get('requests', 0):,}** | **{total.get('rps')}** | "
            f"**{total.get('median_ms', 0):.0f}** | **{total.get('p95_ms', 0):.0f}** | **{total.get('failures')}** | |"
        )
        print(f"\nsign-offs: {signers}; after the load: {settle}")
        print(
            f"throughput {total.get('rps')} req/s; the users ask for {demand} req/s when nothing queues "
            "(think times and each page's time alone)"
        )
        print(
            f"CPU during the load: machine {machine_cpu} % of {os.cpu_count()} cores; gunicorn {cpu['web_s']} s, "
            f"worker {cpu['worker_s']} s, locust {cpu['locust_s']} s (the load generator shares the 2 cores); "
            f"1-minute load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
        )
        print(
            f"server CPU per request in the window: gunicorn {cost_ms['gunicorn']} ms + PostgreSQL "
            f"{cost_ms['postgres']} ms -> about {capacity} req/s on {os.cpu_count()} otherwise idle cores"
        )
        print(json.dumps(result))
    finally:
        kill_group(web, 15)
        kill_group(worker, 15)
        stop(moto)
        stop_redis(args.redis_port)
        if not args.keep_db:
            pg_drop(db)


if __name__ == "__main__":
    main()
