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
(d) Evidence (issue 16): the trail also holds hourly CloudTrail digest files signed with a generated RSA
    key whose public half the AWS fake's ListPublicKeys returns. The S3 pass of (a) runs twice on fresh
    databases, digest validation off then on (target: the rate with it within 10 % of the rate without,
    same run). Then, on a third fresh database, a new source's first pass (yesterday on) and the
    background backfill of the rest of the trail (``sync_audit --backfill`` in its own process, slices
    of 60 s) while this process pushes a sign-off flag (``push_execute``: DescribeModelPackage +
    UpdateModelPackage + its rows) and runs incremental registry syncs of another source: their
    latencies idle and during the backfill, and the backfill's rate.

    .venv/bin/python benchmarks/audit_bench.py [--records 1000000] [--per-file 2000] [--lookup-pages 60]
    .venv/bin/python benchmarks/audit_bench.py --evidence-only      # (d) alone

Every phase runs in its own process (peak RSS is the phase's own). Uses a fresh SQLite file, or with
DATABASE_URL (PostgreSQL) a scratch database ``<name>_audit_bench`` created (and dropped) beside it.
AWS is the AWS-faithful fake (``python -m registry_app.devtools.aws_fake``: moto + ListPublicKeys).
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
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from benchlib import (
    ROOT,
    QueryCounter,
    free_port,
    pct,
    peak_rss_mb,
    pg_drop,
    pg_scratch,
    run_phase,
    setup_django,
    start_fake,
    stop,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"
BUCKET = "bench-cloudtrail"
GROUPS = 200
VERSIONS = 50
ENDPOINTS = 20
PEOPLE = ("mlead", "fairness", "compliance", *(f"ds-{i:02d}" for i in range(40)))
DAYS = int(os.environ.get("AUDIT_BENCH_DAYS", "180"))  # the trail's span (hourly digests over it)


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
    """Write ``records`` records into gzip'd log files, oldest first, under the trail layout; then the
    trail's hourly digest files (chained, signed with a generated key registered with the fake)."""
    s3 = boto("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    start = time.perf_counter()
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    first = now - dt.timedelta(days=DAYS)
    files = -(-records // per_file)
    step = (now - first - dt.timedelta(hours=1)) / files

    def build(index: int) -> tuple[int, dt.datetime, str, str]:
        delivered = first + step * index
        lo, hi = index * per_file, min(records, (index + 1) * per_file)
        plain = json.dumps(
            {"Records": [make_record(i, delivered - dt.timedelta(minutes=3)) for i in range(lo, hi)]}
        ).encode()
        body = gzip.compress(plain, compresslevel=6)
        unique = hashlib.sha256(str(index).encode()).hexdigest()[:16]
        key = (
            f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{delivered:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail_{REGION}_{delivered:%Y%m%dT%H%MZ}_{unique}.json.gz"
        )
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return len(body), delivered.replace(second=0, microsecond=0), key, hashlib.sha256(plain).hexdigest()

    with ThreadPoolExecutor(max_workers=2) as pool:
        built = list(pool.map(build, range(files)))
    logs_s = time.perf_counter() - start
    digests = write_digests(s3, [(when, key, sha) for _, when, key, sha in built], first, now)
    return {
        "files": files,
        "gz_mb": round(sum(b[0] for b in built) / 1e6, 1),
        "seconds": round(logs_s, 1),
        "digests": digests,
        "digest_seconds": round(time.perf_counter() - start - logs_s, 1),
    }


def write_digests(s3: Any, files: list[tuple[dt.datetime, str, str]], first: dt.datetime, now: dt.datetime) -> int:
    """One digest per hour from ``first`` to ``now`` (empty hours too, as CloudTrail does), chained."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from registry_app.devtools.aws_fake import add_cloudtrail_public_key

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    fingerprint = add_cloudtrail_public_key(
        REGION,
        der,
        valid_from=first - dt.timedelta(days=1),
        valid_until=now + dt.timedelta(days=30),
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
    )
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    hours: list[tuple[dt.datetime, dt.datetime, list[tuple[dt.datetime, str, str]]]] = []
    begin = first.replace(minute=1, second=31) - dt.timedelta(hours=1)
    index = 0
    ordered = sorted(files)
    while begin < now:
        end = begin + dt.timedelta(hours=1)
        listed = []
        while index < len(ordered) and ordered[index][0] < end:
            listed.append(ordered[index])
            index += 1
        hours.append((begin, end, listed))
        begin = end
    previous: tuple[str, str, str] | None = None
    bodies = []
    for begin, end, listed in hours:
        key = (
            f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{end:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail-Digest_{REGION}_bench-trail_{REGION}_{end:%Y%m%dT%H%M%SZ}.json.gz"
        )
        document = {
            "awsAccountId": ACCOUNT,
            "digestStartTime": begin.strftime(stamp),
            "digestEndTime": end.strftime(stamp),
            "digestS3Bucket": BUCKET,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": None,
            "oldestEventTime": None,
            "previousDigestS3Bucket": BUCKET if previous else None,
            "previousDigestS3Object": previous[0] if previous else None,
            "previousDigestHashValue": previous[2] if previous else None,
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": previous[1] if previous else None,
            "logFiles": [
                {"s3Bucket": BUCKET, "s3Object": k, "hashValue": sha, "hashAlgorithm": "SHA-256"}
                for _, k, sha in listed
            ],
        }
        plain = json.dumps(document).encode()
        sha = hashlib.sha256(plain).hexdigest()
        text = f"{end.strftime(stamp)}\n{BUCKET}/{key}\n{sha}\n{previous[1] if previous else 'null'}".encode()
        signature = private.sign(text, padding.PKCS1v15(), hashes.SHA256()).hex()
        bodies.append((key, gzip.compress(plain), signature))
        previous = (key, signature, sha)

    def put(item: tuple[str, bytes, str]) -> None:
        key, body, signature = item
        s3.put_object(
            Bucket=BUCKET, Key=key, Body=body, Metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"}
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(put, bodies))
    return len(bodies)


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


def phase_ingest(validate: bool = True) -> dict[str, Any]:
    os.environ["AUDIT_DIGEST_VALIDATION"] = "true" if validate else "false"
    setup_django()
    from django.db import connection

    from registry_app.audit.ingest import ingest_source
    from registry_app.models import CloudTrailEvent, EndpointDeployment, TrailDigest, TrailLogFile

    source = seed_mirror()
    counter = QueryCounter()

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
        "sql_queries": counter.count,
        "rss_mb": round(peak_rss_mb(), 1),
        "aws_calls": result.aws_calls,
        "validation": validate,
        "files_by_state": dict(Counter(TrailLogFile.objects.values_list("state", flat=True))),
        "digests_by_state": dict(Counter(TrailDigest.objects.values_list("state", flat=True))),
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


# --------------------------------------------------------------------------------------------- (d) backfill


def _registry(packages: int = 10) -> Any:
    """A second source whose registry (in the fake) is synced and pushed to during the backfill."""
    from registry_app.mirror.execute import sync_source
    from registry_app.models import RegistrySource

    sm = boto("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="latency-group", ModelPackageGroupDescription="bench")
    for _ in range(packages):
        sm.create_model_package(
            ModelPackageGroupName="latency-group",
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": "1.dkr.ecr.eu-west-1.amazonaws.com/x:1", "ModelDataUrl": "s3://b/m"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )
    registry = RegistrySource.objects.create(name="latency", region=REGION, account_id=ACCOUNT)
    run = sync_source(registry, mode="full")
    assert run.status == "succeeded", run.error
    return registry


def _push_once(package: Any, n: int) -> float:
    """One sign-off-flag push, as the push task runs it: the seconds until it is sent."""
    from registry_app.models import PushOutbox
    from registry_app.review.push import push_execute

    package.refresh_from_db()
    push = PushOutbox.objects.create(
        package=package,
        kind=PushOutbox.Kind.FLAGS,
        flags={"BenchFlag": str(n)},
        expected_status=package.approval_status,
    )
    start = time.perf_counter()
    done = push_execute(push.pk)
    elapsed = time.perf_counter() - start
    assert done.state == PushOutbox.State.SENT, (done.state, done.last_error)
    return elapsed


def _sync_once(registry: Any) -> float:
    from registry_app.mirror.execute import sync_source

    start = time.perf_counter()
    run = sync_source(registry, mode="incremental")
    assert run.status == "succeeded", run.error
    return time.perf_counter() - start


def _stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(pct(values, 0.95) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def phase_backfill(slice_seconds: int) -> dict[str, Any]:
    """A new source (whole trail by default): its first pass, then the backfill in another process
    while this one pushes and syncs another source; latencies idle and during the backfill."""
    os.environ["AUDIT_DIGEST_VALIDATION"] = "true"
    os.environ.pop("AUDIT_S3_INITIAL_DAYS", None)
    os.environ["CELERY_BROKER_URL"] = "memory://"  # the pushes' follow-up tasks go nowhere
    setup_django()
    from registry_app.audit.coverage import source_coverage
    from registry_app.audit.ingest import ingest_source
    from registry_app.models import CloudTrailEvent, ModelPackage, TrailLogFile

    source = seed_mirror()
    registry = _registry()
    packages = list(ModelPackage.objects.filter(source=registry).order_by("version"))
    first = ingest_source(source, lookup=False)
    idle_push = [_push_once(packages[i % len(packages)], i) for i in range(15)]
    idle_sync = [_sync_once(registry) for _ in range(5)]
    command = [
        sys.executable,
        "manage.py",
        "sync_audit",
        "--backfill",
        "--source",
        source.name,
        "--max-seconds",
        str(slice_seconds),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    busy_push: list[float] = []
    busy_sync: list[float] = []
    n = 100
    while proc.poll() is None:
        busy_push.append(_push_once(packages[n % len(packages)], n))
        n += 1
        if n % 5 == 0:
            busy_sync.append(_sync_once(registry))
        time.sleep(0.5)
    wall = time.perf_counter() - started
    out, err = proc.communicate()
    coverage = source_coverage(source)
    busy = sum(b.busy_seconds for b in coverage.backfill)
    backfilled = CloudTrailEvent.objects.count() - first.s3.inserted
    return {
        "first_pass_events": first.s3.inserted,
        "backfill_rc": proc.returncode,
        "backfill_output": out.strip().splitlines()[-3:] + err.strip().splitlines()[-3:],
        "backfill_events": backfilled,
        "backfill_wall_s": round(wall, 1),
        "backfill_events_per_s_wall": round(backfilled / wall) if wall else 0,
        "backfill_slices_busy_s": round(busy, 1),
        "backfill_events_per_s_in_slices": round(backfilled / busy) if busy else 0,
        "backfill_done": coverage.backfill_done,
        "days": [(b.days_done, b.days_total) for b in coverage.backfill],
        "files_by_state": dict(Counter(TrailLogFile.objects.values_list("state", flat=True))),
        "push_idle": _stats(idle_push),
        "push_during_backfill": _stats(busy_push),
        "sync_idle": _stats(idle_sync),
        "sync_during_backfill": _stats(busy_sync),
    }


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
    parser.add_argument("--evidence-only", action="store_true", help="Only (d): validation on/off and the backfill.")
    parser.add_argument("--slice-seconds", type=int, default=60, help="Backfill slice length in (d).")
    parser.add_argument("--repeat", type=int, default=2, help="Pairs of S3 passes without / with validation.")
    parser.add_argument("--days", type=int, default=DAYS, help="The trail's span in days (one digest an hour).")
    parser.add_argument(
        "--keep-alive",
        action="store_true",
        help="Serve the AWS fake with keep-alive connections, as AWS does (moto's server closes each one).",
    )
    args = parser.parse_args()

    if args.phase:
        name, *rest = args.phase
        if name == "generate":
            result = phase_generate(int(rest[0]), int(rest[1]))
        elif name == "ingest":
            result = phase_ingest(validate=(rest or ["on"])[0] == "on")
        elif name == "backfill":
            result = phase_backfill(int(rest[0]))
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
        AUDIT_BENCH_DAYS=str(args.days),
    )
    scratch = scratch_database(env)
    extra: list[str] = []

    def fresh(suffix: str) -> dict[str, str]:
        """Another empty database for a phase: a scratch PostgreSQL database, or a new SQLite file."""
        other = dict(env, VAR_DIR=tempfile.mkdtemp(prefix=f"audit-bench-{suffix}-"))
        if scratch:
            other["DATABASE_URL"] = pg_scratch(f"{scratch.rpartition('/')[2]}_{suffix}")
            extra.append(other["DATABASE_URL"])
        return other

    fake = start_fake(port, keep_alive=args.keep_alive)
    try:
        db = "PostgreSQL (scratch database)" if scratch else "SQLite"
        server = "gunicorn, keep-alive" if args.keep_alive else "werkzeug, a connection per call"
        print(f"# audit benchmark: {args.records} records, {args.per_file} per file, {args.days} days, db={db}")
        print(f"# AWS fake: {server}")
        gen = run_phase(__file__, env, "generate", str(args.records), str(args.per_file))
        print(
            f"generated {gen['files']} log files ({gen['gz_mb']} MB gzip) in {gen['seconds']} s, "
            f"{gen['digests']} signed hourly digests in {gen['digest_seconds']} s"
        )
        # Off and on alternate (a shared machine's load drifts): each pair is measured back to back.
        offs, ons = [], []
        for round_ in range(args.repeat):
            offs.append(run_phase(__file__, fresh(f"novalidation{round_}"), "ingest", "off"))
            last = round_ == args.repeat - 1
            ons.append(run_phase(__file__, env if last else fresh(f"validation{round_}"), "ingest", "on"))
            print(json.dumps({"ingest_without_validation": offs[-1], "ingest_with_validation": ons[-1]}, indent=2))
            print(f"# uptime: {os.getloadavg()}")
        off, ingest = offs[-1], ons[-1]
        if not args.evidence_only:
            lookup_env = dict(env, VAR_DIR=tempfile.mkdtemp(prefix="audit-bench-lookup-"))
            lookup_env.pop("DATABASE_URL", None)  # (b) needs no big database: a fresh SQLite file
            one = run_phase(__file__, lookup_env, "lookup", str(args.lookup_pages), "1")
            lookup_env["VAR_DIR"] = tempfile.mkdtemp(prefix="audit-bench-lookup2-")
            two = run_phase(__file__, lookup_env, "lookup", str(args.lookup_pages // 2), "2")
            print(json.dumps({"lookup_one_source": one, "lookup_two_sources_same_account": two}, indent=2))
            pages = run_phase(__file__, env, "pages", str(args.page_reps))
            print(json.dumps({"pages": pages}, indent=2))
        backfill = run_phase(__file__, fresh("backfill"), "backfill", str(args.slice_seconds))
        print(json.dumps({"backfill": backfill}, indent=2))

        print("\n| figure | value |\n|---|---|")
        print(f"| records in trail files (AWS fake S3, loopback) | {ingest['records']:,} in {ingest['files']} files |")
        print(f"| digest files (hourly, signed, chained) | {gen['digests']:,}: {ingest['digests_by_state']} |")
        linked = f"{ingest['linked_to_package']:,} linked to a package, {ingest['linked_to_user']:,} to a user"
        print(f"| stored (unique relevant) | {ingest['stored']:,} ({linked}) |")
        for label, res in (("without digest validation", off), ("**with digest validation**", ingest)):
            cpu = res["cpu_us_per_event"]
            print(
                f"| ingest rate {label} | **{res['events_per_s']:,} events/s** ({res['s3_pass_s']} s); CPU/event "
                f"writer {cpu['writer_thread']} µs, ingest processes {cpu['ingest_processes']} µs, "
                f"database {cpu['database_server']} µs; {res['sql_queries']:,} SQL; RSS {res['rss_mb']} MB |"
            )
        ratios = [on["events_per_s"] / max(1, no["events_per_s"]) for no, on in zip(offs, ons, strict=True)]
        pairs = ", ".join(f"{no['events_per_s']:,} → {on['events_per_s']:,}" for no, on in zip(offs, ons, strict=True))
        print(f"| rate without → with validation, each pair back to back | {pairs} events/s |")
        print(
            f"| **rate with / without validation** | **{statistics.mean(ratios):.3f}** mean of "
            f"{', '.join(f'{r:.3f}' for r in ratios)} (target >= 0.90) |"
        )
        cpu_ratios = [
            on["cpu_bound_events_per_s"] / max(1, no["cpu_bound_events_per_s"])
            for no, on in zip(offs, ons, strict=True)
        ]
        print(
            f"| CPU-bound rate with / without (our processes + database, not the fake S3) | "
            f"{statistics.mean(cpu_ratios):.3f} mean of {', '.join(f'{r:.3f}' for r in cpu_ratios)} |"
        )
        print(f"| trail files by validation state (with) | {ingest['files_by_state']} |")
        print(f"| AWS calls with validation | {ingest['aws_calls']} |")
        if not args.evidence_only:
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
                    print(
                        f"| {label} | median {res['median_ms']} ms, p95 {res['p95_ms']} ms, queries {res['queries']} |"
                    )
        b = backfill
        print(f"| new source's first pass (yesterday on) | {b['first_pass_events']:,} events |")
        print(
            f"| **background backfill** ({args.slice_seconds} s slices, own process) | {b['backfill_events']:,} events "
            f"in {b['backfill_wall_s']} s = **{b['backfill_events_per_s_wall']:,} events/s** wall "
            f"({b['backfill_events_per_s_in_slices']:,}/s inside slices); done: {b['backfill_done']}, "
            f"days {b['days']} |"
        )
        for what in ("push", "sync"):
            idle, busy = b[f"{what}_idle"], b[f"{what}_during_backfill"]
            label = (
                "push (DescribeModelPackage + UpdateModelPackage + rows)"
                if what == "push"
                else "incremental registry sync"
            )
            print(
                f"| {label} idle / during the backfill | median {idle.get('median_ms')} / {busy.get('median_ms')} ms, "
                f"p95 {idle.get('p95_ms')} / {busy.get('p95_ms')} ms, "
                f"max {idle.get('max_ms')} / {busy.get('max_ms')} ms "
                f"(n = {idle['n']} / {busy['n']}) |"
            )
    finally:
        stop(fake)
        if not args.keep_db:
            pg_drop(scratch)
        for url in extra:
            pg_drop(url)


if __name__ == "__main__":
    main()
