"""Fault soak: sign-offs and syncs while AWS fails, workers die, Redis restarts and PostgreSQL drops connections.

The stack (all on 127.0.0.1, started and stopped here): a scratch PostgreSQL database
``h6_soak_<pid>``, a private Redis on port 6391 (broker and cache, no persistence), a moto server,
``benchmarks/faultproxy.py`` in front of it (the app's only way to AWS: ``AWS_ENDPOINT_URL``),
gunicorn, and a Celery worker consuming every configured queue.

During the soak (until at least ``--faults`` faults were injected):

* signers (one per role and more) log in through the login form and sign off packages taken from
  their queue, posting the review page's form with its CSRF token; mostly approvals, some rejections;
* a staff user requests incremental and full syncs through ``/sync/<source>/run/``;
* the proxy answers a seeded share of SageMaker calls with ThrottlingException, 500/503 or a
  timeout (half of the timeouts after moto applied the call: a lost response);
* the worker's process group is SIGKILLed and restarted, the private Redis stopped and started,
  and the scratch database's connections terminated (``pg_terminate_backend``, this database only);
* someone else changes the registry directly with boto3 (approves/rejects packages, edits
  descriptions and metadata, registers new versions), so syncs have updates to find and some
  pushes meet a changed status.

Then, without faults: stuck pushes are re-sent (``pushes_resend_stuck``) until none is pending or
sending, an incremental and a full sync run, and the checks:

* every decision reached the registry exactly once: its push was sent and the proxy saw exactly
  one successful ``UpdateModelPackage`` ClientToken for it (botocore's retries of one token count
  once), or "already applied" after an earlier attempt with that token; or the push is a visible
  conflict and nothing was written with its token; no package has two policy decisions; no
  update at the proxy lacks a push row;
* no sync lost an update: the mirror equals the registry for every package (status, description,
  metadata), after the incremental sync and after the full one;
* ``manage.py verify_audit`` passes;
* no notification was lost or doubled: e-mails go to an SMTP server on loopback (in this process) that
  records which outbox rows each message tells; the kicks after commit fail while Redis is down, a
  "beat" thread here asks for the outbox sweep every 30 s (failing too while Redis is down); after the
  final syncs the sweep runs until nothing is pending, and every decision and conflict has its rows,
  every row ended sent or cancelled, and each sent row reached the SMTP server exactly once
  (``notify_bench.soak_notify_check``).

    .venv/bin/python benchmarks/soak_bench.py [--quick] [--faults 1000] [--rate 0.25] [--seed 1]
        [--db-prefix h6_soak] [--redis-port 6391]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from benchlib import (
    ROOT,
    browser_login,
    celery_queues,
    exit_on_sigterm,
    free_port,
    kill_group,
    pg_drop,
    pg_scratch,
    pg_terminate,
    queue_links,
    run_phase,
    setup_django,
    signoff_form_data,
    stack_env,
    start_fake,
    start_gunicorn,
    start_redis,
    start_worker,
    stop,
    stop_redis,
)
from faultproxy import FaultProxy
from notify_bench import Smtp, soak_notify_check, soak_notify_settle

REDIS_PORT = 6391
REGION = "us-east-1"
PASSWORD = "soak-bench-password-42"
SOURCE = "soak"
ROLES = ("ml-lead", "fairness", "compliance")


def boto(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="soak",
        aws_secret_access_key="soak",
        config=Config(retries={"max_attempts": 10}),
    )


def create_package(sm: Any, group: str, n: int) -> str:
    return str(
        sm.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus="PendingManualApproval",
            ModelPackageDescription=f"{group} candidate {n}",
            InferenceSpecification={
                "Containers": [{"Image": f"1.dkr.ecr.{REGION}.amazonaws.com/x:{n}"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties={"GitCommitSha": f"{n:07x}", "owner": "soak"},
        )["ModelPackageArn"]
    )


def registry_state(sm: Any) -> dict[str, dict[str, Any]]:
    """Every package in the registry (moto directly, no faults): status, description, metadata."""
    state = {}
    for gpage in sm.get_paginator("list_model_package_groups").paginate():
        for group in gpage["ModelPackageGroupSummaryList"]:
            pages = sm.get_paginator("list_model_packages").paginate(
                ModelPackageGroupName=group["ModelPackageGroupName"]
            )
            for page in pages:
                for summary in page["ModelPackageSummaryList"]:
                    record = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
                    state[record["ModelPackageArn"]] = {
                        "status": record.get("ModelApprovalStatus", ""),
                        "description": record.get("ApprovalDescription", ""),
                        "metadata": record.get("CustomerMetadataProperties") or {},
                    }
    return state


# --------------------------------------------------------------------------------------------- phases (Django)


def phase_seed(groups: int, per_group: int, signers_per_role: int) -> dict[str, Any]:
    setup_django()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from registry_app.mirror.execute import sync_source
    from registry_app.models import ModelPackage, RegistrySource

    call_command("migrate", verbosity=0)
    sm = boto(os.environ["AWS_ENDPOINT_URL"])
    names = [f"soak-{g:02d}" for g in range(groups)]
    for name in names:
        sm.create_model_package_group(ModelPackageGroupName=name)
        for n in range(per_group):
            create_package(sm, name, n)
    signers = []
    for role in ROLES:
        group = Group.objects.get_or_create(name=role)[0]
        for i in range(signers_per_role):
            user = User.objects.create_user(f"{role}-{i}", f"{role}-{i}@soak.example", PASSWORD)
            user.groups.add(group)
            signers.append(user.username)
    User.objects.create_user("soak-staff", "staff@soak.example", PASSWORD, is_staff=True)
    # The signers exist before the first sync, which asks them to review every package: one digest each.
    source = RegistrySource.objects.create(name=SOURCE, region=REGION)
    run = sync_source(source, mode="full")
    return {"groups": names, "signers": signers, "packages": ModelPackage.objects.count(), "sync": run.status}


def phase_settle(max_seconds: int) -> dict[str, Any]:
    """Re-send stuck pushes (through the running worker) until none is pending or sending."""
    setup_django()
    from registry_app.models import PushOutbox
    from registry_app.review.push import pushes_resend_stuck

    started = time.monotonic()
    resent = rounds = 0
    active = PushOutbox.objects.filter(state__in=("pending", "sending"))
    while active.exists() and time.monotonic() - started < max_seconds:
        resent += pushes_resend_stuck(older_than_seconds=15)
        rounds += 1
        time.sleep(5)
    return {"resent": resent, "rounds": rounds, "left_active": active.count(), "s": round(time.monotonic() - started)}


def phase_sync(mode: str) -> dict[str, Any]:
    """One sync of the source in this process (through the proxy, faults off), waiting out a lock
    left by a killed worker; then compare the mirror with the registry."""
    setup_django()
    from registry_app.mirror.execute import sync_source
    from registry_app.models import ModelPackage, RegistrySource, SyncRun

    source = RegistrySource.objects.get(name=SOURCE)
    deadline = time.monotonic() + 180
    while True:
        run = sync_source(source, mode=mode)
        if run.status != SyncRun.Status.SKIPPED or time.monotonic() > deadline:
            break
        time.sleep(5)
    registry = registry_state(boto(os.environ["SOAK_MOTO_URL"]))
    mirror = {
        p.arn: {"status": p.approval_status, "description": p.approval_description, "metadata": p.customer_metadata}
        for p in ModelPackage.objects.filter(source=source, deleted_at__isnull=True)
    }
    mismatches = []
    for arn, want in registry.items():
        have = mirror.get(arn)
        if have != want:
            mismatches.append({"arn": arn, "registry": want, "mirror": have})
    extra = sorted(set(mirror) - set(registry))
    return {
        "mode": mode,
        "status": run.status,
        "errors": (run.errors or [])[:3],
        "registry_packages": len(registry),
        "mirror_packages": len(mirror),
        "mismatches": len(mismatches) + len(extra),
        "examples": mismatches[:5] + [{"arn": arn, "registry": None} for arn in extra[:5]],
    }


def _earlier_decision_stood(package_id: int) -> bool:
    """Whether a policy decision of the package other than its newest did not end in a conflict."""
    from registry_app.models import Decision, PushOutbox

    decisions = list(Decision.objects.filter(package_id=package_id, kind=Decision.Kind.POLICY).order_by("created_at"))
    for decision in decisions[:-1]:
        states = set(decision.pushes.filter(kind=PushOutbox.Kind.DECISION).values_list("state", flat=True))
        if states != {PushOutbox.State.CONFLICT}:
            return True
    return False


def phase_check(proxy_path: str, outside_path: str) -> dict[str, Any]:
    setup_django()
    from django.db.models import Count

    from registry_app.models import Decision, PushOutbox, SignOff, SyncRun

    proxy = json.loads(Path(proxy_path).read_text())
    outside = json.loads(Path(outside_path).read_text())  # arn -> list of statuses set outside, in order
    registry = registry_state(boto(os.environ["SOAK_MOTO_URL"]))
    ok_tokens: dict[str, int] = Counter()
    all_tokens: dict[str, int] = Counter()
    for update in proxy["updates"]:
        all_tokens[update["client_token"]] += 1
        if 200 <= update["http_status"] < 300:
            ok_tokens[update["client_token"]] += 1
    pushes = {str(p.pk): p for p in PushOutbox.objects.select_related("package")}
    problems: list[dict[str, Any]] = []
    outcome: Counter[str] = Counter()
    for decision in Decision.objects.select_related("package").prefetch_related("pushes"):
        decision_pushes = [p for p in decision.pushes.all() if p.kind == PushOutbox.Kind.DECISION]
        if len(decision_pushes) != 1:
            problems.append({"decision": decision.pk, "problem": f"{len(decision_pushes)} decision pushes"})
            continue
        push = decision_pushes[0]
        token = str(push.pk)
        written = ok_tokens.get(token, 0) > 0
        if push.state == PushOutbox.State.SENT and written:
            outcome["sent: written once (one ClientToken)"] += 1
            later_outside = bool(outside.get(push.package.arn))
            final = registry.get(push.package.arn, {}).get("status")
            if not later_outside and final != push.target_status:
                problems.append(
                    {"decision": decision.pk, "problem": f"registry shows {final}, decided {push.target_status}"}
                )
        elif push.state == PushOutbox.State.SENT:
            outcome[f"sent without a call: {push.last_error[:60]}"] += 1
            problems.append({"decision": decision.pk, "problem": f"sent but never written: {push.last_error[:120]}"})
        elif push.state == PushOutbox.State.CONFLICT and not written:
            outcome["conflict (visible, nothing written)"] += 1
        elif push.state == PushOutbox.State.CONFLICT:
            outcome["conflict, yet written"] += 1
            problems.append({"decision": decision.pk, "problem": "conflict row, but its update reached the registry"})
        else:
            outcome[f"undelivered ({push.state})"] += 1
            problems.append({"decision": decision.pk, "problem": f"left {push.state}: {push.last_error[:120]}"})
    repeated = list(
        Decision.objects.filter(kind=Decision.Kind.POLICY)
        .values("package_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("package_id", flat=True)
    )
    # A second policy decision is legitimate after the first one's push conflicted (the registry was
    # changed elsewhere, the sign-offs went stale and the reviewers signed again); a double is one
    # where an earlier decision of the package did not end in a conflict.
    doubled = [pid for pid in repeated if _earlier_decision_stood(pid)]
    phantom = sorted(t for t in all_tokens if t not in pushes)
    audit = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    by_state = dict(PushOutbox.objects.values_list("state").annotate(n=Count("pk")).order_by("state"))
    runs = Counter(
        f"{trigger} {mode}: {status}"
        for trigger, mode, status in SyncRun.objects.values_list("trigger", "mode", "status")
    )
    by_kind = dict(PushOutbox.objects.values_list("kind").annotate(n=Count("pk")).order_by("kind"))
    return {
        "signoffs": SignOff.objects.count(),
        "decisions": Decision.objects.count(),
        "decision_outcomes": dict(outcome),
        "pushes_by_state": by_state,
        "pushes_by_kind": by_kind,
        "sync_runs": dict(sorted(runs.items())),
        "push_attempts": sum(p.attempts for p in pushes.values()),
        "update_calls_forwarded": len(proxy["updates"]),
        "update_calls_ok": sum(ok_tokens.values()),
        "update_tokens_ok": len(ok_tokens),
        "update_tokens_retried": sum(1 for n in ok_tokens.values() if n > 1),
        "update_ok_lost_response": sum(1 for u in proxy["updates"] if not u["delivered"] and u["http_status"] == 200),
        "sent_pushes_written": sum(1 for t, p in pushes.items() if p.state == "sent" and ok_tokens.get(t)),
        "tokens_without_push": len(phantom),
        "doubled_decisions": len(doubled),
        "repeated_after_conflict": len(repeated) - len(doubled),
        "doubled_examples": doubled[:5],
        "problems": len(problems),
        "problem_examples": problems[:10],
        "verify_audit_rc": audit.returncode,
        "verify_audit": (audit.stdout.strip() or audit.stderr.strip()).splitlines()[-1:],
    }


# --------------------------------------------------------------------------------------------- chaos (driver)


class Soak:
    """The concurrent actors of the soak; each loop runs until ``stop`` is set."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], site: str, seed: dict[str, Any]) -> None:
        self.args, self.env, self.site, self.seed = args, env, site, seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.outside: dict[str, list[str]] = {}
        self.worker: subprocess.Popen[bytes] | None = None
        self.rng = random.Random(args.seed)
        self.tmp = Path(env["VAR_DIR"]).parent
        self.queues = celery_queues(env)

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def start_worker(self) -> None:
        self.worker = start_worker(self.env, self.queues, 2, self.tmp / "worker.log")

    def beat(self) -> None:
        """The beat's notification sweep (the only beat entry the soak needs), through the broker."""
        from celery import Celery

        app = Celery(broker=self.env["REDIS_URL"])
        while not self.stop.wait(30):
            try:
                app.send_task("registry_app.tasks.sweep_notifications", queue="email", retry=False)
                self.count("notification sweeps sent")
            except Exception:  # noqa: BLE001 - Redis is down: beat would fail the same way
                self.count("notification sweeps lost (broker down)")

    # -- people -------------------------------------------------------------------------------
    def _session(self, username: str) -> requests.Session:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                if browser_login(session, self.site, username, PASSWORD, timeout=30):
                    return session
            except requests.RequestException:
                pass
            self.count("http: login retried")
            time.sleep(1)
        return session

    def signer(self, username: str, seed: int) -> None:
        rng = random.Random(seed)
        session = self._session(username)
        groups = self.seed["groups"]
        while not self.stop.is_set():
            group = rng.choice(groups)
            try:
                queue = session.get(f"{self.site}/queue/?group={group}", timeout=30, allow_redirects=False)
                if queue.status_code == 302:  # the session is gone: log in again
                    session = self._session(username)
                    continue
                if queue.status_code >= 500:
                    self.count("http: 5xx (queue)")
                    time.sleep(1)
                    continue
                links = queue_links(queue.text, group)
                if not links:
                    time.sleep(0.2)
                    continue
                url = f"{self.site}{rng.choice(links)}"
                page = session.get(url, timeout=30)
                if page.status_code >= 500:
                    self.count("http: 5xx (review page)")
                    time.sleep(1)
                    continue
                reject = rng.random() < 0.15
                comment = "Fails the fairness review; retrain." if reject else "Soak review: ok."
                data = signoff_form_data(page.text, "reject" if reject else "approve", comment)
                if data is None:
                    continue
                response = session.post(
                    url.replace("/?source=", "/signoff/?source="),
                    data=data,
                    headers={"Origin": self.site, "Referer": url},
                    timeout=30,
                    allow_redirects=False,
                )
                if response.status_code == 302:
                    self.count("sign-offs posted")
                elif response.status_code < 500:
                    self.count(f"sign-offs refused ({response.status_code})")
                else:
                    self.count("http: 5xx (sign-off)")
            except requests.RequestException:
                self.count("http: connection error")
                time.sleep(0.5)
            time.sleep(rng.uniform(0.2, 0.8))

    def syncer(self) -> None:
        """Syncs, alternately requested by staff on the web (run by the worker) and run by
        ``manage.py sync_registry`` (in that process), incremental mostly, full every fourth time."""
        session = self._session("soak-staff")
        n = 0
        while not self.stop.wait(self.args.sync_every):
            n += 1
            mode = "full" if n % 4 in (0, 1) else "incremental"
            if n % 2:
                command = [sys.executable, "manage.py", "sync_registry", "--source", SOURCE]
                done = subprocess.run(
                    command + (["--full"] if mode == "full" else []),
                    env=self.env,
                    cwd=ROOT,
                    capture_output=True,
                    timeout=600,
                    check=False,
                )
                self.count(f"sync_registry commands ({mode}){'' if done.returncode == 0 else ', failed'}")
                continue
            try:
                session.get(f"{self.site}/sync/", timeout=30)
                response = session.post(
                    f"{self.site}/sync/{SOURCE}/run/",
                    data={"mode": mode, "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")},
                    headers={"Origin": self.site, "Referer": f"{self.site}/sync/"},
                    timeout=30,
                    allow_redirects=False,
                )
                if response.status_code == 302 and "/accounts/login/" in response.headers.get("Location", ""):
                    session = self._session("soak-staff")
                elif response.status_code in (200, 302):
                    self.count(f"syncs requested ({mode})")
                else:
                    self.count(f"sync request answered {response.status_code}")
            except requests.RequestException:
                self.count("http: connection error (sync)")

    def outsider(self) -> None:
        """Changes made in the registry directly (moto, no proxy), as another tool or person would."""
        sm = boto(self.env["SOAK_MOTO_URL"])
        rng = random.Random(self.args.seed + 7)
        created = Counter[str]()
        while not self.stop.wait(self.args.outside_every):
            group = rng.choice(self.seed["groups"])
            packages = sm.list_model_packages(ModelPackageGroupName=group, MaxResults=100)["ModelPackageSummaryList"]
            arn = rng.choice(packages)["ModelPackageArn"]
            record = sm.describe_model_package(ModelPackageName=arn)
            action = rng.choice(("status", "description", "metadata", "new version"))
            params: dict[str, Any] = {
                "ModelPackageArn": arn,
                "ModelApprovalStatus": record.get("ModelApprovalStatus", "PendingManualApproval"),
                "ApprovalDescription": record.get("ApprovalDescription", ""),
                "CustomerMetadataProperties": record.get("CustomerMetadataProperties") or {},
            }
            if action == "new version":
                created[group] += 1
                create_package(sm, group, 1000 + created[group])
            elif action == "status":
                status = rng.choice(("Approved", "Rejected"))
                params.update(ModelApprovalStatus=status, ApprovalDescription=f"set outside the dashboard: {status}")
                sm.update_model_package(**params)
                with self.lock:
                    self.outside.setdefault(arn, []).append(status)
            elif action == "description":
                params["ApprovalDescription"] = f"edited outside at {time.time():.0f}"
                sm.update_model_package(**params)
            else:
                params["CustomerMetadataProperties"] = dict(
                    params["CustomerMetadataProperties"], Ticket=f"T-{rng.randint(1, 9999)}"
                )
                sm.update_model_package(**params)
            self.count(f"outside: {action}")

    def chaos(self, db: str) -> None:
        rng = random.Random(self.args.seed + 13)
        while not self.stop.wait(rng.uniform(*self.args.chaos_every)):
            kind = rng.choice(("worker", "worker", "redis", "postgres"))
            if kind == "worker":
                kill_group(self.worker, 9)
                self.count("worker SIGKILLed")
                time.sleep(rng.uniform(0.5, 2))
                self.start_worker()
            elif kind == "redis":
                stop_redis(REDIS_PORT)
                self.count("redis restarted")
                time.sleep(rng.uniform(1, 3))
                start_redis(REDIS_PORT, str(self.tmp))
            else:
                self.count("postgres connections terminated", pg_terminate(db))
                self.count("postgres drops")


def main() -> None:
    global REDIS_PORT  # --redis-port: two soaks (or a colleague's) on one machine
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, >= 60 faults (under 3 minutes)")
    parser.add_argument("--faults", type=int, default=1000, help="inject at least this many faults")
    parser.add_argument("--rate", type=float, default=0.5, help="share of SageMaker calls that fail")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--per-group", type=int, default=20)
    parser.add_argument("--signers-per-role", type=int, default=2)
    parser.add_argument("--sync-every", type=float, default=3.0)
    parser.add_argument("--outside-every", type=float, default=1.5)
    parser.add_argument("--min-seconds", type=int, default=120)
    parser.add_argument("--max-seconds", type=int, default=1500)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--db-prefix", default="h6_soak", help="scratch database name prefix")
    parser.add_argument("--redis-port", type=int, default=REDIS_PORT, help="port of the private Redis")
    parser.add_argument("--phase", nargs="+")
    args = parser.parse_args()
    args.chaos_every = (10.0, 20.0)  # seconds between two of: worker SIGKILL, Redis restart, PostgreSQL drop
    if args.phase:
        name, *rest = args.phase
        if name == "seed":
            result = phase_seed(*(int(x) for x in rest))
        elif name == "settle":
            result = phase_settle(int(rest[0]))
        elif name == "sync":
            result = phase_sync(rest[0])
        elif name == "notify_settle":
            result = soak_notify_settle(int(rest[0]))
        elif name == "notify_check":
            result = soak_notify_check(rest[0])
        else:
            result = phase_check(rest[0], rest[1])
        print(json.dumps(result, default=str))
        return
    if args.quick:
        args.faults, args.rate, args.groups, args.per_group = 60, 0.35, 4, 6
        args.min_seconds, args.max_seconds, args.sync_every, args.chaos_every = 30, 60, 4.0, (4.0, 8.0)

    REDIS_PORT = args.redis_port
    exit_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="h6-soak-"))
    moto_port, web_port = free_port(), free_port()
    site = f"http://127.0.0.1:{web_port}"
    moto_url = f"http://127.0.0.1:{moto_port}"
    db = pg_scratch(f"{args.db_prefix}_{os.getpid()}")
    smtp = Smtp()
    smtp_port = smtp.start()
    env = stack_env(
        tmp,
        site,
        REDIS_PORT,
        DATABASE_URL=db,
        AWS_ACCESS_KEY_ID="soak",
        AWS_SECRET_ACCESS_KEY="soak",
        AWS_DEFAULT_REGION=REGION,
        # Short timeouts so an injected timeout costs seconds, and a lock left by a killed worker expires soon.
        AWS_READ_TIMEOUT="2",
        AWS_CONNECT_TIMEOUT="2",
        SYNC_LOCK_SECONDS="30",
        SOAK_MOTO_URL=moto_url,
        # Notifications over SMTP to the loopback server; short batches, backoffs and leases keep the run short.
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
        NOTIFY_BATCH_SECONDS="15",
        NOTIFY_CLAIM_LEASE_SECONDS="20",
        NOTIFY_RETRY_BASE_SECONDS="5",
        NOTIFY_RETRY_MAX_SECONDS="30",
        NOTIFY_MAX_ATTEMPTS="50",
    )
    print(f"# fault soak: >= {args.faults} faults at rate {args.rate}, seed {args.seed}, db {db}")
    start_redis(REDIS_PORT, str(tmp))
    moto = proxy = web = None
    soak: Soak | None = None
    try:
        moto = start_fake(moto_port)
        seed = run_phase(
            __file__,
            dict(env, DEBUG="true", AWS_ENDPOINT_URL=moto_url),
            "seed",
            str(args.groups),
            str(args.per_group),
            str(args.signers_per_role),
        )
        print(json.dumps({"seed": {k: v for k, v in seed.items() if k != "groups"}}), flush=True)
        proxy = FaultProxy(moto_port, seed=args.seed, rate=args.rate, timeout_s=2.5).start()
        env["AWS_ENDPOINT_URL"] = proxy.url
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True
        )
        web = start_gunicorn(env, web_port, 2, 4, tmp / "gunicorn.log")
        soak = Soak(args, env, site, seed)
        soak.start_worker()
        threads = [
            threading.Thread(target=soak.signer, args=(name, i), daemon=True) for i, name in enumerate(seed["signers"])
        ]
        threads += [threading.Thread(target=t, daemon=True) for t in (soak.syncer, soak.outsider, soak.beat)]
        threads.append(threading.Thread(target=soak.chaos, args=(db,), daemon=True))
        proxy.enabled = True
        started = time.monotonic()
        for thread in threads:
            thread.start()
        while True:
            time.sleep(5)
            elapsed = time.monotonic() - started
            injected = proxy.snapshot()["faults_injected"]
            print(f"  {elapsed:5.0f} s: {injected} faults injected; {dict(soak.counts)}", flush=True)
            if (injected >= args.faults and elapsed >= args.min_seconds) or elapsed >= args.max_seconds:
                break
        soak.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        soak_s = time.monotonic() - started
        proxy.enabled = False
        # Settle: Redis and a worker up, faults off; re-send what is stuck; then syncs and the checks.
        if not _redis_up():
            start_redis(REDIS_PORT, str(tmp))
        if soak.worker is None or soak.worker.poll() is not None:
            soak.start_worker()
        settle = run_phase(__file__, env, "settle", "600")
        after_incremental = run_phase(__file__, env, "sync", "incremental")
        after_full = run_phase(__file__, env, "sync", "full")
        notify_settle = run_phase(__file__, env, "notify_settle", "600")
        told_path = tmp / "smtp.json"
        smtp.dump(told_path)
        notify = run_phase(__file__, env, "notify_check", str(told_path))
        notify.update(settle=notify_settle, messages=smtp.messages)
        snapshot = proxy.snapshot()
        proxy_path, outside_path = tmp / "proxy.json", tmp / "outside.json"
        proxy_path.write_text(json.dumps(snapshot))
        outside_path.write_text(json.dumps(soak.outside))
        check = run_phase(__file__, env, "check", str(proxy_path), str(outside_path))
        check["web_errors_by_cause"] = error_causes(tmp / "gunicorn.log")
        check["worker_errors_by_cause"] = error_causes(tmp / "worker.log")
        result = {
            "soak_s": round(soak_s),
            "faults": snapshot["faults"],
            "faults_injected": snapshot["faults_injected"],
            "faults_by_operation": snapshot["faults_by_operation"],
            "forwarded": snapshot["forwarded"],
            "chaos": dict(soak.counts),
            "outside_status_changes": sum(len(v) for v in soak.outside.values()),
            "settle": settle,
            "after_incremental_sync": after_incremental,
            "after_full_sync": after_full,
            "check": check,
            "notifications": notify,
        }
        print(json.dumps({k: v for k, v in result.items() if k not in ("check",)}, indent=2))
        print(json.dumps({"check": check}, indent=2))
        faults = snapshot["faults"]
        print("\n| figure | value |\n|---|---|")
        print(f"| soak | {round(soak_s)} s, {snapshot['faults_injected']:,} faults injected |")
        print(f"| throttling (400 ThrottlingException) | {faults['throttle']} |")
        print(f"| 5xx (500/503) | {faults['5xx']} |")
        timeouts = f"{faults['timeout']} ({faults['timeout_after_forward']})"
        print(f"| timeouts (of which after moto applied the call) | {timeouts} |")
        c = soak.counts
        kills = f"{c['worker SIGKILLed']} / {c['redis restarted']} / {c['postgres drops']}"
        print(
            f"| worker SIGKILLs / Redis restarts / PostgreSQL drops | {kills} "
            f"({c['postgres connections terminated']} connections terminated) |"
        )
        print(f"| sign-offs / decisions | {check['signoffs']} / {check['decisions']} |")
        print(f"| decision outcomes | {check['decision_outcomes']} |")
        print(f"| pushes by state | {check['pushes_by_state']} |")
        print(
            f"| UpdateModelPackage forwarded / ok / distinct ClientTokens / tokens retried | "
            f"{check['update_calls_forwarded']} / {check['update_calls_ok']} / {check['update_tokens_ok']} / "
            f"{check['update_tokens_retried']} |"
        )
        print(
            f"| doubled decisions / tokens without a push / problems | {check['doubled_decisions']} / "
            f"{check['tokens_without_push']} / {check['problems']} |"
        )
        print(f"| second policy decision after a conflicted first | {check['repeated_after_conflict']} |")
        print(
            f"| mirror ≠ registry after incremental / full sync | {after_incremental['mismatches']} / "
            f"{after_full['mismatches']} (of {after_full['registry_packages']} packages) |"
        )
        print(f"| web errors by cause (gunicorn log) | {check['web_errors_by_cause']} |")
        print(f"| sync runs (trigger mode: status) | {check['sync_runs']} |")
        print(f"| verify_audit | rc {check['verify_audit_rc']}: {check['verify_audit']} |")
        print(
            f"| notifications: rows / e-mails received / rows told | {notify['rows']} / {notify['messages']} / "
            f"{notify['messages_told_rows']} |"
        )
        print(f"| notifications by kind and state | {notify['by_kind_state']} |")
        print(
            f"| notifications lost: sent but never received / left open / failed / decisions or conflicts "
            f"without rows | {notify['sent_never_received']} / {notify['left_open']} / {notify['failed']} / "
            f"{notify['decisions_without_rows']} / {notify['conflicts_without_rows']} |"
        )
        print(f"| notifications doubled (rows received twice) | {notify['duplicates']} |")
        print(json.dumps({k: v for k, v in result.items() if k != "faults_by_operation"}, default=str))
    finally:
        smtp.stop()
        if soak is not None:
            soak.stop.set()
            kill_group(soak.worker, 15)
        kill_group(web, 15)
        if proxy is not None:
            proxy.stop()
        stop(moto)
        stop_redis(REDIS_PORT)
        if not args.keep_db:
            pg_drop(db)


EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)): ?(.{0,90})")


def error_causes(log: Path) -> dict[str, int]:
    """The last line of every traceback in a log (JSON lines with ``exc_info``, or plain text), counted."""
    causes: Counter[str] = Counter()
    if not log.exists():
        return {}
    for line in log.read_text(errors="replace").splitlines():
        text = line
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            lines = str(record.get("exc_info") or "").strip().splitlines() if isinstance(record, dict) else []
            text = lines[-1] if lines else ""
        match = EXCEPTION_LINE.match(text.strip())
        if match:
            causes[f"{match.group(1)}: {match.group(2)}"] += 1
    return dict(causes.most_common(12))


def _redis_up() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=0.2).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
