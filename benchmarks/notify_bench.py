"""Notification outbox: send 10,000 queued notifications to a loopback SMTP server; rate and duplicates.

The stack (on 127.0.0.1, started and stopped here): a scratch PostgreSQL database ``<prefix>_<pid>``, an
SMTP server (aiosmtpd, in this process) that records every message and the outbox rows it names
(``X-Governance-Notification``), and ``--senders`` processes each running
``notifications_send_due`` (what the Celery task and the beat sweep run) against the same outbox.

1. seed: ``--rows`` outbox rows, one "decided" notification to each of as many people (no batching: one
   message per row, the worst case for the sender), all due now;
2. send: the sender processes start together; with ``--kill`` one of them is SIGKILLed after a third of
   the messages arrived and started again (a worker dying mid-send);
3. sweep: after the claim lease (``NOTIFY_CLAIM_LEASE_SECONDS``, 30 s here) one more run sends what the
   killed process had claimed;
4. check: every row sent, each received how many times (duplicates), the rate.

    .venv/bin/python benchmarks/notify_bench.py [--rows 10000] [--senders 2] [--kill] [--db-prefix gov_notify_bench]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import ROOT, exit_on_sigterm, free_port, pg_drop, pg_scratch, run_phase, setup_django

LEASE_SECONDS = 30


# --------------------------------------------------------------------------------------------- phases (Django)


def phase_seed(rows: int) -> dict[str, Any]:
    setup_django()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.utils import timezone

    from registry_app.models import Notification, NotificationKind
    from tests.factories import ModelPackageFactory

    call_command("migrate", verbosity=0)
    package = ModelPackageFactory(version=1)
    users = User.objects.bulk_create(
        [User(username=f"reader-{n}", email=f"reader-{n}@bench.example", password="!") for n in range(rows)],
        batch_size=2000,
    )
    facts = {"verb": "approved", "actor": "bench", "target_status": "Approved", "description": "bench"}
    now = timezone.now()
    Notification.objects.bulk_create(
        [
            Notification(
                package=package,
                kind=NotificationKind.DECIDED,
                recipient=user,
                key="decision:1",
                payload=facts,
                created_at=now,
                deliver_after=now,
            )
            for user in users
        ],
        batch_size=2000,
    )
    return {"rows": Notification.objects.count()}


def phase_send() -> dict[str, Any]:
    setup_django()
    from registry_app.notifications.sender import notifications_send_due

    started = time.monotonic()
    cpu = time.process_time()
    report = notifications_send_due()
    return {
        "cpu_s": round(time.process_time() - cpu, 2),
        "messages": report.messages,
        "sent": report.sent,
        "retrying": report.retrying,
        "failed": report.failed,
        "s": round(time.monotonic() - started, 2),
    }


def phase_check() -> dict[str, Any]:
    setup_django()
    from django.db.models import Count, Max

    from registry_app.models import Notification

    states = dict(Notification.objects.values_list("state").annotate(n=Count("pk")).order_by("state"))
    attempts = Notification.objects.aggregate(most=Max("attempts"))["most"]
    ids = list(Notification.objects.values_list("pk", flat=True))
    return {"states": states, "max_attempts": attempts, "ids": ids}


# --------------------------------------------------------------------------------------------- the soak's phases
# soak_bench.py runs these (in its child processes) to show that broker outages, worker kills and
# PostgreSQL drops lose no notification and send none twice.


def soak_notify_settle(max_seconds: int) -> dict[str, Any]:
    """What beat does, until nothing is pending or sending: ask the worker (through the broker) to sweep."""
    setup_django()
    from registry_app.models import Notification
    from registry_app.tasks import sweep_notifications_task

    started = time.monotonic()
    rounds = 0
    open_rows = Notification.objects.filter(state__in=("pending", "sending"))
    while open_rows.exists() and time.monotonic() - started < max_seconds:
        sweep_notifications_task.delay()
        rounds += 1
        time.sleep(5)
    return {"rounds": rounds, "left_open": open_rows.count(), "s": round(time.monotonic() - started)}


def soak_notify_check(told_path: str) -> dict[str, Any]:
    """Every event has its rows; every e-mail row ended sent (or cancelled) and reached the SMTP server once."""
    setup_django()
    from django.db.models import Count

    from registry_app.models import Decision, ModelPackage, Notification, PushOutbox

    told = {int(k): n for k, n in json.loads(Path(told_path).read_text()).items()}
    rows = {pk: (state, kind) for pk, state, kind in Notification.objects.values_list("pk", "state", "kind")}
    sent = {pk for pk, (state, _) in rows.items() if state == "sent"}
    keys = set(Notification.objects.values_list("kind", "key"))
    decided = {key for kind, key in keys if kind in ("decided", "revoked")}
    conflicts = {key for kind, key in keys if kind == "conflict"}
    requested = set(Notification.objects.filter(kind="review_requested").values_list("package_id", flat=True))
    return {
        "rows": len(rows),
        "by_kind_state": {
            f"{kind} {state}": n
            for kind, state, n in Notification.objects.values_list("kind", "state")
            .annotate(n=Count("pk"))
            .order_by("kind", "state")
        },
        "messages_told_rows": len(told),
        "sent_never_received": len(sent - set(told)),
        "received_not_sent": len(set(told) - sent),
        "duplicates": sum(n - 1 for n in told.values() if n > 1),
        "duplicate_rows": sorted(pk for pk, n in told.items() if n > 1)[:10],
        "left_open": sum(1 for state, _ in rows.values() if state in ("pending", "sending")),
        "failed": sum(1 for state, _ in rows.values() if state == "failed"),
        "decisions_without_rows": Decision.objects.exclude(pk__in=[int(k.split(":")[1]) for k in decided]).count(),
        "conflicts_without_rows": PushOutbox.objects.filter(state="conflict")
        .exclude(pk__in=[k.split(":", 1)[1] for k in conflicts])
        .count(),
        "packages_never_requested": ModelPackage.objects.exclude(pk__in=requested).count(),
    }


# --------------------------------------------------------------------------------------------- driver


class Smtp:
    """aiosmtpd on loopback, counting the outbox rows each message names."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.lock = threading.Lock()
        self.messages = 0
        self.told: Counter[int] = Counter()
        self.first = self.last = 0.0
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook name)
        import email

        message = email.message_from_bytes(envelope.original_content or envelope.content)
        header = message.get("X-Governance-Notification") or ""
        now = time.monotonic()
        with self.lock:
            self.messages += 1
            self.first = self.first or now
            self.last = now
            for part in header.split(","):
                if part.strip():
                    self.told[int(part)] += 1
        return "250 OK"

    def start(self) -> int:
        self.controller.start()
        return self.port

    def dump(self, path: Path) -> None:
        with self.lock:
            path.write_text(json.dumps({str(k): n for k, n in self.told.items()}))

    def stop(self) -> None:
        self.controller.stop()


def sender(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A sender process; its result (the last line of ``log``) says how much CPU it used."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, __file__, "--phase", "send"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=2, help="sender processes running at once")
    parser.add_argument("--kill", action="store_true", help="SIGKILL one sender mid-run, then restart it")
    parser.add_argument("--db-prefix", default="gov_notify_bench")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--phase", nargs="+")
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        result = {"seed": lambda: phase_seed(int(rest[0])), "send": phase_send, "check": phase_check}[name]()
        print(json.dumps(result, default=str))
        return

    exit_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    smtp = Smtp()
    port = smtp.start()
    db = pg_scratch(f"{args.db_prefix}_{os.getpid()}")
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="governance.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        SITE_URL="https://governance.bench.example",
        DATABASE_URL=db,
        VAR_DIR=str(tmp / "var"),
        LOG_LEVEL="WARNING",
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        NOTIFY_CLAIM_LEASE_SECONDS=str(LEASE_SECONDS),
        PYTHONPATH=str(ROOT),
    )
    env.pop("REDIS_URL", None)
    print(f"# notify bench: {args.rows:,} rows, {args.senders} senders{', one killed' if args.kill else ''}, db {db}")
    try:
        seed = run_phase(__file__, env, "seed", str(args.rows))
        print(json.dumps({"seed": seed}), flush=True)
        started = time.monotonic()
        procs = [sender(env, tmp / f"sender-{n}.log") for n in range(args.senders)]
        killed = 0
        if args.kill:
            while smtp.messages < args.rows // 3 and procs[0].poll() is None:
                time.sleep(0.01)
            os.kill(procs[0].pid, signal.SIGKILL)
            procs[0].wait()
            killed = 1
            procs[0] = sender(env, tmp / "sender-0-restarted.log")
        for proc in procs:
            proc.wait(timeout=3600)
        send_s = time.monotonic() - started
        cpu_s = 0.0
        for log in tmp.glob("sender-*.log"):
            lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
            cpu_s += json.loads(lines[-1])["cpu_s"] if lines else 0.0
        before_sweep = smtp.messages
        time.sleep(LEASE_SECONDS + 1)
        sweep = run_phase(__file__, env, "send")
        check = run_phase(__file__, env, "check")
        ids = set(check.pop("ids"))
        told = smtp.told
        duplicates = sum(n - 1 for n in told.values() if n > 1)
        result = {
            "rows": args.rows,
            "senders": args.senders,
            "killed": killed,
            "send_s": round(send_s, 2),
            "smtp_window_s": round(smtp.last - smtp.first, 2),
            "messages_before_sweep": before_sweep,
            "sweep": sweep,
            "messages": smtp.messages,
            "rows_told": len(told),
            "rows_never_told": len(ids - set(told)),
            "duplicates": duplicates,
            "duplicate_rows": sorted(i for i, n in told.items() if n > 1)[:10],
            "states": check["states"],
            "max_attempts": check["max_attempts"],
            "rate_per_s": round(before_sweep / send_s, 1),
            "sender_cpu_ms_per_message": round(1000 * cpu_s / max(1, before_sweep), 2),
            "load_average": os.getloadavg(),
        }
        print(json.dumps(result))
        print("\n| figure | value |\n|---|---|")
        restarted = " (one SIGKILLed and restarted)" if killed else ""
        print(f"| rows queued / sender processes | {args.rows:,} / {args.senders}{restarted} |")
        rate = f"**{result['rate_per_s']:,} messages/s**"
        print(f"| sent by the senders | {before_sweep:,} messages in {send_s:.1f} s: {rate} |")
        print(f"| sent by the sweep after the lease | {sweep['messages']} |")
        print(
            f"| sender CPU per message (the killed sender's not counted) | {result['sender_cpu_ms_per_message']} ms |"
        )
        print(f"| load average (2 cores) | {', '.join(f'{x:.1f}' for x in os.getloadavg())} |")
        print(f"| rows told / never told | {len(told):,} / {result['rows_never_told']} |")
        print(f"| **duplicates** | **{duplicates}** |")
        print(f"| outbox states | {check['states']} (most attempts: {check['max_attempts']}) |")
    finally:
        smtp.stop()
        if not args.keep_db:
            pg_drop(db)


if __name__ == "__main__":
    main()
