"""CloudTrail ingest benchmark.

(a) 1,000,000 CloudTrail records in gzip'd trail log files on a loopback moto server, ingested by
    ``ingest_source`` (S3 pass): events/s (target >= 20,000) and peak RSS of the ingesting process,
    and CPU per event (the inserting thread, every ingest process, PostgreSQL's server process) with
    the rate two idle cores would allow from it: wall time on a shared machine says little alone.
(b) LookupEvents against a loopback fake CloudTrail endpoint that enforces 2 requests/s per
    account+Region (a sliding one-second window; beyond it: ThrottlingException) and checks that
    every NextToken comes back with identical parameters: the fraction of the limit reached (target
    >= 90 %), throttles, and events lost (target 0); once for one source, once for two sources of
    the same account+Region ingesting at the same time (they share one limiter).
(c) With the 1M events loaded: the package audit timeline, ``/audit/?actor=`` and
    ``/as-of/?endpoint=&at=`` pages (built by another engineer), SQL queries (constant) and
    median/p95 server time (target p95 <= 150 ms); skipped with a note when a page is not there yet.

    .venv/bin/python benchmarks/audit_bench.py [--records 1000000] [--per-file 2000] [--lookup-pages 60]

Every phase runs in its own process (peak RSS is the phase's own). Uses a fresh SQLite file, or with
DATABASE_URL (PostgreSQL) a scratch database ``<name>_audit_bench`` created (and dropped) beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchlib import free_port, pct, peak_rss_mb, pg_drop, pg_scratch, run_phase, setup_django, start_moto, stop

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "bench-cloudtrail"
GROUPS = 200
VERSIONS = 50
ENDPOINTS = 20
PEOPLE = ("mlead", "fairness", "compliance", *(f"ds-{i:02d}" for i in range(40)))
DAYS = 180


# --------------------------------------------------------------------------------------------- records


def _identity(person: str) -> dict[str, Any]:
    role = "AmazonSageMaker-ExecutionRole-Bench"
    return {
        "type": "AssumedRole",
        "principalId": f"AROABENCHEXAMPLE:{'SageMaker'}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/SageMaker",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIABENCHEXAMPLEKEY",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROABENCHEXAMPLE",
                "arn": f"arn:aws:iam::{ACCOUNT}:role/service-role/{role}",
                "accountId": ACCOUNT,
                "userName": role,
            },
            "webIdFederationData": {},
            "attributes": {"creationDate": "2025-03-14T09:01:02Z", "mfaAuthenticated": "false"},
            "sourceIdentity": person,
        },
    }


def _call(i: int) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """A deterministic mix: mostly approvals and registrations, some cards and deployments."""
    group, version = f"bench-group-{i % GROUPS:03d}", 1 + (i // GROUPS) % VERSIONS
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group}/{version}"
    kind = i % 20
    if kind < 10:
        status = ("Approved", "Rejected", "PendingManualApproval")[i % 3]
        return (
            "UpdateModelPackage",
            {"modelPackageArn": arn, "modelApprovalStatus": status, "approvalDescription": f"bench decision {i}"},
            {"modelPackageArn": arn},
        )
    if kind < 14:
        return (
            "CreateModelPackage",
            {
                "modelPackageGroupName": group,
                "modelPackageDescription": "bench",
                "modelApprovalStatus": "PendingManualApproval",
                "inferenceSpecification": {
                    "containers": [{"image": "1.dkr.ecr.eu-west-1.amazonaws.com/x:1", "modelDataUrl": f"s3://b/{i}"}],
                    "supportedContentTypes": ["text/csv"],
                    "supportedResponseMIMETypes": ["text/csv"],
                },
                "customerMetadataProperties": {"GitCommitSha": f"{i:08x}"},
            },
            {"modelPackageArn": arn},
        )
    if kind < 16:
        card = f"{group}-v{version}"
        return ("UpdateModelCard", {"modelCardName": card, "modelCardStatus": "PendingReview"}, None)
    if kind == 16:
        return ("CreateModel", {"modelName": f"m-{i}", "primaryContainer": {"modelPackageName": arn}}, None)
    if kind == 17:
        return (
            "CreateEndpointConfig",
            {
                "endpointConfigName": f"c-{i}",
                "productionVariants": [{"variantName": "AllTraffic", "modelName": f"m-{i - 1}"}],
            },
            None,
        )
    if kind == 18:
        return (
            "UpdateEndpoint",
            {"endpointName": f"bench-ep-{(i // 20) % ENDPOINTS}", "endpointConfigName": f"c-{i - 1}"},
            None,
        )
    return ("PutModelPackageGroupPolicy", {"modelPackageGroupName": group, "resourcePolicy": "{}"}, None)


def make_record(i: int, when: dt.datetime) -> dict[str, Any]:
    name, request, response = _call(i)
    return {
        "eventVersion": "1.09",
        "userIdentity": _identity(PEOPLE[i % len(PEOPLE)]),
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "sagemaker.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "Boto3/1.37.0 md/Botocore#1.37.0 ua/2.1 os/linux lang/python#3.11.7",
        "requestParameters": request,
        "responseElements": response,
        # Random-looking ids, as CloudTrail's: inserts land all over the unique index.
        "requestID": str(uuid.UUID(bytes=hashlib.md5(b"r%d" % i).digest(), version=4)),
        "eventID": str(uuid.UUID(bytes=hashlib.md5(b"e%d" % i).digest(), version=4)),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }


# --------------------------------------------------------------------------------------------- phases


def boto(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION)


def phase_generate(records: int, per_file: int) -> dict[str, Any]:
    """Write ``records`` records into gzip'd log files, oldest first, under the trail layout."""
    s3 = boto("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    start = time.perf_counter()
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    first = now - dt.timedelta(days=DAYS)
    files = -(-records // per_file)
    step = (now - first - dt.timedelta(hours=1)) / files
    total_bytes = 0

    def build(index: int) -> int:
        delivered = first + step * index
        lo, hi = index * per_file, min(records, (index + 1) * per_file)
        body = gzip.compress(
            json.dumps(
                {"Records": [make_record(i, delivered - dt.timedelta(minutes=3)) for i in range(lo, hi)]}
            ).encode(),
            compresslevel=6,
        )
        unique = hashlib.sha256(str(index).encode()).hexdigest()[:16]
        key = (
            f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{delivered:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail_{REGION}_{delivered:%Y%m%dT%H%MZ}_{unique}.json.gz"
        )
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return len(body)

    with ThreadPoolExecutor(max_workers=2) as pool:
        total_bytes = sum(pool.map(build, range(files)))
    return {"files": files, "gz_mb": round(total_bytes / 1e6, 1), "seconds": round(time.perf_counter() - start, 1)}


def seed_mirror() -> Any:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from registry_app.models import ModelCard, ModelPackage, ModelPackageGroup, RegistrySource

    call_command("migrate", verbosity=0)
    source = RegistrySource.objects.create(name="bench", region=REGION, account_id=ACCOUNT, cloudtrail_bucket=BUCKET)
    groups = ModelPackageGroup.objects.bulk_create(
        ModelPackageGroup(
            source=source,
            name=f"bench-group-{g:03d}",
            arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/bench-group-{g:03d}",
        )
        for g in range(GROUPS)
    )
    ModelPackage.objects.bulk_create(
        ModelPackage(
            source=source,
            group=group,
            version=v,
            arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{group.name}/{v}",
            approval_status="Approved",
        )
        for group in groups
        for v in range(1, VERSIONS + 1)
    )
    ModelCard.objects.bulk_create(
        ModelCard(
            source=source, name=f"{g.name}-v{v}", arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-card/{g.name}-v{v}"
        )
        for g in groups[:20]
        for v in range(1, 6)
    )
    for person in PEOPLE[:10]:
        User.objects.create_user(person, f"{person}@bench.example", "bench-password-123")
    User.objects.create_superuser("bench-admin", "admin@bench.example", "bench-password-123")
    return source


class CpuMeter:
    """CPU seconds of this process's descendants (the parsing processes), sampled from /proc while
    they live: they exit with the pool, and their forkserver parent is never waited for."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _stat(self, pid: str) -> tuple[int, float] | None:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / self.tick  # ppid, utime + stime

    def _sample(self) -> None:
        me = os.getpid()
        stats = {int(p): st for p in os.listdir("/proc") if p.isdigit() and (st := self._stat(p)) is not None}
        family = {me}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _) in stats.items():
                if ppid in family and pid not in family:
                    family.add(pid)
                    changed = True
        for pid in family - {me}:
            self.seen[pid] = max(self.seen.get(pid, 0.0), stats[pid][1])

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._sample()
        self.stop.set()
        self.thread.join()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())


def _process_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phase_ingest() -> dict[str, Any]:
    setup_django()
    from django.db import connection

    from registry_app.audit.ingest import ingest_source
    from registry_app.models import CloudTrailEvent, EndpointDeployment

    source = seed_mirror()
    queries = 0

    def counter(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    started = time.perf_counter()
    marks: dict[str, float] = {}
    from registry_app.audit import ingest as cloudtrail_ingest

    real_relink = cloudtrail_ingest.relink_events

    def relink(source: Any, **kw: Any) -> int:
        marks.setdefault("s3_done", time.perf_counter())
        marks.setdefault("writer_cpu", time.thread_time() - writer_cpu0)
        marks.setdefault("process_cpu", _process_cpu() - process_cpu0)
        marks.setdefault("parser_cpu", meter.seconds)
        marks.setdefault("database_cpu", backend_cpu() - database_cpu0)
        return real_relink(source, **kw)

    cloudtrail_ingest.relink_events = relink  # type: ignore[assignment]
    writer_cpu0, process_cpu0, database_cpu0 = time.thread_time(), _process_cpu(), backend_cpu()
    with CpuMeter() as meter, connection.execute_wrapper(counter):
        result = ingest_source(source, lookup=False, since=(dt.date.today() - dt.timedelta(days=DAYS + 2)))
    wall = time.perf_counter() - started
    s3_seconds = marks.get("s3_done", time.perf_counter()) - started
    inserted = max(1, result.s3.inserted)
    writer_us = marks.get("writer_cpu", 0.0) / inserted * 1e6  # the thread that links and inserts
    total_us = (marks.get("process_cpu", 0.0) + marks.get("parser_cpu", 0.0)) / inserted * 1e6
    database_us = marks.get("database_cpu", 0.0) / inserted * 1e6  # PostgreSQL's server process (COPY, indexes)
    return {
        "files": result.s3.pages,
        "records": result.s3.records,
        "inserted": result.s3.inserted,
        "stored": CloudTrailEvent.objects.count(),
        "linked_to_package": CloudTrailEvent.objects.filter(package__isnull=False).count(),
        "linked_to_user": CloudTrailEvent.objects.filter(user__isnull=False).count(),
        "errors": result.errors[:5],
        "s3_pass_s": round(s3_seconds, 2),
        "events_per_s": round(result.s3.inserted / s3_seconds),
        # CPU per event in the S3 pass (a shared, loaded machine stretches wall time, not these much):
        "cpu_us_per_event": {
            "writer_thread": round(writer_us, 1),
            "ingest_processes": round(total_us, 1),
            "database_server": round(database_us, 1),
        },
        # What two otherwise idle cores allow: the writer thread's own limit, or all CPU over 2 cores.
        "cpu_bound_events_per_s": round(
            min(1e6 / max(writer_us, 1e-9), 2e6 / max(total_us + database_us, 1e-9)) if total_us else 0
        ),
        "wall_s": round(wall, 2),
        "after_ingest_s": round(wall - s3_seconds, 2),
        "deployments_rebuilt": len(result.deployments_rebuilt),
        "deployment_rows": EndpointDeployment.objects.count(),
        "sql_queries": queries,
        "rss_mb": round(peak_rss_mb(), 1),
        "aws_calls": result.aws_calls,
    }


def backend_cpu() -> float:
    """CPU seconds the PostgreSQL server process of this connection has used (same machine); 0 on SQLite,
    whose work runs inside the writer thread."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------- (b) fake LookupEvents


class FakeCloudTrail(ThreadingHTTPServer):
    """LookupEvents on loopback: 2 requests per sliding second per account+Region, 50 per page."""

    daemon_threads = True

    def __init__(self, events: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events = events  # newest first
        self.lock = threading.Lock()
        self.accepted: dict[tuple[str, str], list[float]] = {}
        self.throttled = 0
        self.token_mismatch = 0
        self.tokens: dict[str, tuple[str, int]] = {}  # token -> (hash of the other parameters, offset)

    def admit(self, key: tuple[str, str]) -> bool:
        now = time.monotonic()
        with self.lock:
            times = self.accepted.setdefault(key, [])
            recent = [t for t in times[-4:] if now - t < 1.0]
            if len(recent) >= 2:
                self.throttled += 1
                return False
            times.append(now)
            return True


class _Handler(BaseHTTPRequestHandler):
    server: FakeCloudTrail

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        auth = self.headers.get("Authorization", "")
        scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
        key = (scope[0] if scope else "", scope[2] if len(scope) > 2 else "")  # (access key ~ account, region)
        if not self.server.admit(key):
            self._reply(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
            return
        token = body.pop("NextToken", None)
        shape = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        offset = 0
        if token:
            expected = self.server.tokens.get(token)
            if expected is None or expected[0] != shape:
                self.server.token_mismatch += 1
                self._reply(400, {"__type": "InvalidNextTokenException", "message": "parameters changed"})
                return
            offset = expected[1]
        size = min(50, int(body.get("MaxResults") or 50))
        chunk = self.server.events[offset : offset + size]
        out: dict[str, Any] = {"Events": chunk}
        if offset + size < len(self.server.events):
            nxt = uuid.uuid4().hex
            self.server.tokens[nxt] = (shape, offset + size)
            out["NextToken"] = nxt
        self._reply(200, out)


def lookup_events(count: int) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(count):
        when = now - dt.timedelta(minutes=i)
        rec = make_record(10_000_000 + i, when)
        out.append(
            {
                "EventId": rec["eventID"],
                "EventName": rec["eventName"],
                "ReadOnly": "false",
                "EventTime": when.timestamp(),
                "EventSource": rec["eventSource"],
                "Username": "SageMaker",
                "Resources": [],
                "CloudTrailEvent": json.dumps(rec),
            }
        )
    return out


def phase_lookup(pages: int, sources: int) -> dict[str, Any]:
    setup_django()
    from django.core.management import call_command

    from registry_app.audit.ingest import ingest_source
    from registry_app.models import CloudTrailEvent, RegistrySource

    call_command("migrate", verbosity=0)
    events = lookup_events(pages * 50)
    servers = []
    try:
        server = FakeCloudTrail(events)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        os.environ["AWS_ENDPOINT_URL_CLOUDTRAIL"] = f"http://127.0.0.1:{server.server_address[1]}"
        from registry_app.aws import session

        session.clear_cache()
        # Several sources of the same account+Region: one shared limiter must keep them under 2 TPS together.
        rows = [
            RegistrySource.objects.create(name=f"lookup-{n}", region=REGION, account_id=ACCOUNT) for n in range(sources)
        ]
        results: list[Any] = []
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=sources) as pool:
            results = list(pool.map(lambda s: ingest_source(s, s3=False, rebuild=False), rows))
        wall = time.perf_counter() - started
        accepted = sum(len(v) for v in server.accepted.values())
        stamps = sorted(t for v in server.accepted.values() for t in v)
        span = stamps[-1] - stamps[0] if len(stamps) > 1 else wall
        stored_ids = set(CloudTrailEvent.objects.values_list("event_id", flat=True))
        lost = sum(1 for e in events if e["EventId"] not in stored_ids)
        return {
            "sources": sources,
            "pages_per_source": pages,
            "events_served": len(events),
            "wall_s": round(wall, 2),
            "requests_accepted": accepted,
            "requests_throttled": server.throttled,
            "token_mismatches": server.token_mismatch,
            # Rate between the first and the last accepted request, as the server saw them.
            "achieved_tps": round((accepted - 1) / span, 3),
            "fraction_of_limit": round((accepted - 1) / span / 2.0, 3),
            "events_lost": lost,
            "complete": all(r.lookup.complete for r in results),
            "errors": [e for r in results for e in r.errors][:5],
        }
    finally:
        for server in servers:
            server.shutdown()


# --------------------------------------------------------------------------------------------- (c) pages


def phase_pages(reps: int) -> dict[str, Any]:
    setup_django()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import Resolver404, resolve

    from registry_app.models import CloudTrailEvent, ModelPackage

    busy = ModelPackage.objects.get(group__name="bench-group-000", version=1)
    quiet = ModelPackage.objects.get(group__name="bench-group-199", version=50)
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    pages = {
        "package timeline": [
            f"/packages/{busy.group.name}/{busy.version}/audit/",
            f"/packages/{quiet.group.name}/{quiet.version}/audit/",
        ],
        "/audit/?actor=": ["/audit/?actor=mlead", "/audit/?actor=ds-39"],
        "/as-of/?endpoint=&at=": [f"/as-of/?endpoint=bench-ep-1&at={at}", f"/as-of/?endpoint=bench-ep-7&at={at}"],
    }
    client = Client()
    client.force_login(User.objects.get(username="bench-admin"))
    out: dict[str, Any] = {"events_loaded": CloudTrailEvent.objects.count()}
    for label, urls in pages.items():
        try:
            resolve(urls[0].split("?", 1)[0])
        except Resolver404:
            out[label] = {"skipped": f"{urls[0].split('?', 1)[0]} is not routed yet"}
            continue
        client.get(urls[0])
        times: list[float] = []
        queries: dict[str, set[int]] = {url: set() for url in urls}
        statuses = set()
        for rep in range(reps):
            url = urls[rep % len(urls)]
            with CaptureQueriesContext(connection) as ctx:
                start = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
            statuses.add(response.status_code)
            queries[url].add(len(ctx.captured_queries))
        out[label] = {
            "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(pct(times, 0.95), 1),
            "queries": {url: sorted(q) for url, q in queries.items()},
            "statuses": sorted(statuses),
        }
    return out


# --------------------------------------------------------------------------------------------- driver


def scratch_database(env: dict[str, str]) -> str | None:
    """With DATABASE_URL (PostgreSQL): a fresh ``<name>_audit_bench`` database beside it."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        return None
    scratch = pg_scratch(f"{url.rpartition('/')[2].split('?')[0]}_audit_bench")
    env["DATABASE_URL"] = scratch
    return scratch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-file", type=int, default=2000)
    parser.add_argument("--lookup-pages", type=int, default=60)
    parser.add_argument("--page-reps", type=int, default=60)
    parser.add_argument("--keep-db", action="store_true", help="Keep the PostgreSQL scratch database.")
    parser.add_argument("--phase", nargs="+")
    args = parser.parse_args()

    if args.phase:
        name, *rest = args.phase
        if name == "generate":
            result = phase_generate(int(rest[0]), int(rest[1]))
        elif name == "ingest":
            result = phase_ingest()
        elif name == "lookup":
            result = phase_lookup(int(rest[0]), int(rest[1]))
        else:
            result = phase_pages(int(rest[0]))
        print(json.dumps(result, default=str))
        return

    port = free_port()
    tmp = tempfile.mkdtemp(prefix="audit-bench-")
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        DEBUG="true",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        VAR_DIR=tmp,
        LOG_LEVEL="ERROR",
        ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
    )
    scratch = scratch_database(env)
    moto = start_moto(port)
    try:
        db = "PostgreSQL (scratch database)" if scratch else "SQLite"
        print(f"# audit benchmark: {args.records} records, {args.per_file} per file, db={db}")
        gen = run_phase(__file__, env, "generate", str(args.records), str(args.per_file))
        print(f"generated {gen['files']} log files ({gen['gz_mb']} MB gzip) in {gen['seconds']} s")
        ingest = run_phase(__file__, env, "ingest")
        print(json.dumps({"ingest": ingest}, indent=2))
        lookup_env = dict(env, VAR_DIR=tempfile.mkdtemp(prefix="audit-bench-lookup-"))
        lookup_env.pop("DATABASE_URL", None)  # (b) needs no big database: a fresh SQLite file
        one = run_phase(__file__, lookup_env, "lookup", str(args.lookup_pages), "1")
        lookup_env["VAR_DIR"] = tempfile.mkdtemp(prefix="audit-bench-lookup2-")
        two = run_phase(__file__, lookup_env, "lookup", str(args.lookup_pages // 2), "2")
        print(json.dumps({"lookup_one_source": one, "lookup_two_sources_same_account": two}, indent=2))
        pages = run_phase(__file__, env, "pages", str(args.page_reps))
        print(json.dumps({"pages": pages}, indent=2))

        print("\n| figure | value |\n|---|---|")
        print(f"| records in trail files (moto S3, loopback) | {ingest['records']:,} in {ingest['files']} files |")
        linked = f"{ingest['linked_to_package']:,} linked to a package, {ingest['linked_to_user']:,} to a user"
        print(f"| stored (unique relevant) | {ingest['stored']:,} ({linked}) |")
        print(f"| S3 pass wall | {ingest['s3_pass_s']} s |")
        print(f"| **ingest rate** | **{ingest['events_per_s']:,} events/s** |")
        cpu = ingest["cpu_us_per_event"]
        print(
            f"| CPU per event (S3 pass) | writer thread {cpu['writer_thread']} µs, all ingest processes "
            f"{cpu['ingest_processes']} µs, database server {cpu['database_server']} µs |"
        )
        bound = ingest["cpu_bound_events_per_s"]
        print(f"| CPU-bound rate on 2 idle cores (from the CPU figures) | {bound:,} events/s |")
        print(f"| after the pass (relink, evidence, {ingest['deployments_rebuilt']} deployment rebuilds) | "
              f"{ingest['after_ingest_s']} s |")  # fmt: skip
        print(f"| SQL statements | {ingest['sql_queries']:,} |")
        print(f"| **peak RSS (ingesting process)** | **{ingest['rss_mb']} MB** |")
        for label, res in (("one source", one), ("two sources, same account+Region", two)):
            print(
                f"| LookupEvents, {label}: {res['requests_accepted']} calls in {res['wall_s']} s | "
                f"{res['achieved_tps']} req/s = **{res['fraction_of_limit'] * 100:.1f} % of 2 TPS**, "
                f"{res['requests_throttled']} throttled, **{res['events_lost']} events lost**, "
                f"{res['token_mismatches']} token/parameter mismatches |"
            )
        for label in ("package timeline", "/audit/?actor=", "/as-of/?endpoint=&at="):
            res = pages[label]
            if "skipped" in res:
                print(f"| {label} | skipped: {res['skipped']} |")
            else:
                print(f"| {label} | median {res['median_ms']} ms, p95 {res['p95_ms']} ms, queries {res['queries']} |")
    finally:
        stop(moto)
        if not args.keep_db:
            pg_drop(scratch)


if __name__ == "__main__":
    main()
