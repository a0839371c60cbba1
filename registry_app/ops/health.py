"""Readiness: the database answers, the broker accepts a connection, every enabled source is fresh.

``/readyz`` is unauthenticated, so a failing check reports the exception's type only; the full
message goes to the log (with the request id). A check never raises.

Sync freshness: a source is stale when its last successful incremental or full sync finished more
than ``READY_MAX_SYNC_AGE_SECONDS`` ago (default ``3 × SYNC_INTERVAL_SECONDS + 300``; 0 reports
ages without failing). A source that has never synced is ready while it was added less than that
long ago (the first sync is on its way) and not ready after: a mirror that never synced is as
stale as one that stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from registry_app.ops.freshness import source_freshness

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, **self.data}


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, CheckResult]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ok else "not ready",
            "checks": {name: check.as_dict() for name, check in self.checks.items()},
        }


def _failed(what: str, exc: BaseException) -> CheckResult:
    log.warning("readiness: %s check failed: %s: %s", what, type(exc).__name__, exc)
    return CheckResult(ok=False, detail=f"{type(exc).__name__} (details in the log)")


def check_database(alias: str = "default") -> CheckResult:
    started = time.perf_counter()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any driver error means not ready
        return _failed("database", exc)
    return CheckResult(ok=True, detail=f"SELECT 1 in {(time.perf_counter() - started) * 1000.0:.1f} ms")


def check_broker(url: str | None = None, timeout: float | None = None) -> CheckResult:
    """Open (and close) one broker connection, without retrying, within ``timeout`` seconds."""
    from governance.celery import app

    url = url or settings.CELERY_BROKER_URL
    timeout = float(timeout if timeout is not None else settings.READY_BROKER_TIMEOUT_SECONDS)
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout} if url.startswith("redis") else {}
    started = time.perf_counter()
    try:
        with app.connection_for_write(url=url, connect_timeout=timeout, transport_options=options) as conn:
            conn.ensure_connection(max_retries=0, timeout=timeout)
            where = conn.as_uri()  # the password, if any, is masked
    except Exception as exc:  # noqa: BLE001 - any transport error means not ready
        return _failed("broker", exc)
    return CheckResult(ok=True, detail=f"{where} reachable in {(time.perf_counter() - started) * 1000.0:.1f} ms")


def max_sync_age_seconds() -> int:
    configured = getattr(settings, "READY_MAX_SYNC_AGE_SECONDS", None)
    if configured is not None:
        return int(configured)
    return 3 * int(settings.SYNC_INTERVAL_SECONDS) + 300


def check_sync_freshness(now: dt.datetime | None = None) -> CheckResult:
    now = now or timezone.now()
    max_age = max_sync_age_seconds()
    try:
        sources = source_freshness()
    except Exception as exc:  # noqa: BLE001
        return _failed("sync freshness", exc)
    report: dict[str, Any] = {}
    stale: list[str] = []
    for source in sources:
        age = source.lag_seconds(now)
        fresh = max_age <= 0 or age <= max_age
        if source.last_success_at is None:
            detail = f"never synced; added {age:.0f} s ago"
        else:
            detail = f"last successful sync {age:.0f} s ago"
        report[source.name] = {
            "ok": fresh,
            "last_success": source.last_success_at.isoformat() if source.last_success_at else None,
            "age_seconds": round(age, 1),
            "detail": detail,
        }
        if not fresh:
            stale.append(source.name)
    if not sources:
        summary = "no enabled sources"
    elif max_age <= 0:
        summary = "ages reported only (READY_MAX_SYNC_AGE_SECONDS=0)"
    elif stale:
        summary = f"stale: {', '.join(stale)}"
    else:
        summary = f"{len(sources)} source(s) synced within {max_age} s"
    return CheckResult(ok=not stale, detail=summary, data={"max_age_seconds": max_age, "sources": report})


def check_audit_evidence() -> CheckResult:
    """The last audit verification, reported and never failing: a broken audit chain is for staff to
    act on (they are e-mailed), not a reason to take the site out of the load balancer."""
    from registry_app.models import AuditVerification

    try:
        last = (
            AuditVerification.objects.order_by("-started_at", "-pk").values_list("ok", "started_at", "problem").first()
        )
    except Exception as exc:  # noqa: BLE001 - informational only
        log.warning("readiness: audit evidence not read: %s: %s", type(exc).__name__, exc)
        return CheckResult(ok=True, detail="not read (details in the log); informational")
    if last is None:
        return CheckResult(ok=True, detail="the audit chain has not been verified yet; informational")
    state = "ok" if last[0] else f"FAILED ({last[2]})"
    return CheckResult(
        ok=True,
        detail=f"last verification {state} at {last[1].isoformat()}; informational",
        data={"verified": bool(last[0])},
    )


def readiness() -> Readiness:
    """Every check; the sync check is skipped (not ready) when the database is down."""
    database = check_database()
    broker = check_broker()
    if database.ok:
        sync = check_sync_freshness()
        audit = check_audit_evidence()
    else:
        sync = CheckResult(ok=False, detail="not checked: the database is unavailable")
        audit = CheckResult(ok=True, detail="not checked: the database is unavailable")
    return Readiness(checks={"database": database, "broker": broker, "sync": sync, "audit": audit})
