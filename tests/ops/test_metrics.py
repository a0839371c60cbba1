"""/metrics: values computed from seeded rows and a constant number of queries (who may scrape:
tests/ops/test_ops_access.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from registry_app.models import AuditCursor, Notification, PushOutbox, RegistrySource, SyncRun
from registry_app.models.registry import ApprovalStatus
from registry_app.models.signoffs import NotificationKind
from registry_app.ops.metrics import QUERIES_PER_SCRAPE, GovernanceCollector
from registry_app.review.policy import DEFAULT_SLA_HOURS
from tests.factories import ModelPackageFactory, RegistrySourceFactory, SyncRunFactory, UserFactory
from tests.views.test_review_support import (
    make_user,
    package_in_state,
    signoff_row,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def series(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


TOKEN = "scrape-token-for-tests"


@pytest.fixture(autouse=True)
def metrics_token(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN  # with DEBUG off (the test run) /metrics needs one


def scrape(client: Client, **headers: str) -> Samples:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


def at(when: dt.datetime, run: SyncRun, **fields: Any) -> SyncRun:
    """Set ``queued_at`` (auto_now_add) and the rest of the run's times relative to it."""
    SyncRun.objects.filter(pk=run.pk).update(queued_at=when, **fields)
    run.refresh_from_db()
    return run


def backdate(model: Any, pk: Any, when: dt.datetime) -> None:
    model.objects.filter(pk=pk).update(created_at=when)


@pytest.fixture
def now() -> dt.datetime:
    return timezone.now()


@pytest.fixture
def seeded(db: None, now: dt.datetime) -> dict[str, Any]:
    """Two enabled sources (one never synced) and a disabled one; runs, pushes, emails, cursors, reviews."""
    alpha = RegistrySourceFactory(name="alpha")
    beta = RegistrySourceFactory(name="beta")
    RegistrySourceFactory(name="off", enabled=False)
    RegistrySource.objects.filter(pk=beta.pk).update(created_at=now - dt.timedelta(hours=2))

    def run(minutes_ago: float, duration: float | None, **fields: Any) -> SyncRun:
        queued = now - dt.timedelta(minutes=minutes_ago)
        finished = queued + dt.timedelta(seconds=duration) if duration is not None else None
        created = SyncRunFactory(source=fields.pop("source", alpha), duration_s=duration, **fields)
        return at(queued, created, finished_at=finished, started_at=queued)

    # Outside the hour: a nightly full sync and an old incremental.
    run(300, 700.0, mode=SyncRun.Mode.FULL, aws_calls={"Search": 10})
    run(120, 3.0, aws_calls={"ListModelPackages": 9})
    run(30 * 60, 12.0, mode=SyncRun.Mode.ENDPOINTS)  # beyond the 26-hour horizon of the "last run" figures
    # Inside the hour.
    run(30, 4.0, aws_calls={"ListModelPackages": 3}, counts={"throttled_attempts": 2, "throttled_ListModelPackages": 2})
    ok = run(20, 6.0, aws_calls={}, counts={"throttled_attempts": 3})  # as runs recorded the total only
    run(10, 40.0, status=SyncRun.Status.FAILED, aws_calls={"ListModelPackages": 1, "DescribeModelPackage": 5})
    run(1, None, status=SyncRun.Status.RUNNING, aws_calls={"ListModelPackages": 1})
    run(5, 2.0, source=RegistrySource.objects.get(name="off"))  # disabled source: left out

    # Pushes: the oldest undelivered one waits for two hours.
    package = ModelPackageFactory(group__source=alpha, approval_status=ApprovalStatus.APPROVED)
    for state, hours in (("pending", 2.0), ("sending", 0.2), ("failed", 1.0), ("sent", 30.0), ("sent", 20.0)):
        push = PushOutbox.objects.create(package=package, kind="flags", expected_status="x", state=state)
        backdate(PushOutbox, push.pk, now - dt.timedelta(hours=hours))

    # Emails.
    for n, (kind, state) in enumerate(
        [("review_requested", "sent"), ("review_requested", "sent"), ("decided", "failed"), ("conflict", "pending")]
    ):
        Notification.objects.create(package=package, kind=kind, recipient=UserFactory(), key=str(n), state=state)

    # Audit cursors: LookupEvents done until 10 minutes ago (the oldest pass counts), trail files to 25.
    AuditCursor.objects.create(
        source=alpha,
        kind=AuditCursor.Kind.LOOKUP,
        position={
            "passes": {
                "sagemaker": {"done_until": (now - dt.timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")},
                "assume_role": {"done_until": (now - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")},
            }
        },
    )
    delivered = (now - dt.timedelta(minutes=25)).replace(second=0, microsecond=0)
    name = f"111122223333_CloudTrail_eu-west-1_{delivered:%Y%m%dT%H%MZ}_a.json.gz"
    key = f"AWSLogs/111122223333/CloudTrail/eu-west-1/x/{name}"
    AuditCursor.objects.create(source=alpha, kind=AuditCursor.Kind.S3, position={"roots": {"r/": {"last_key": key}}})
    AuditCursor.objects.create(source=alpha, kind="lock", position={"token": "x", "until": 1})

    # Reviews (default policy: one ml-lead, one fairness, one compliance sign-off).
    package_in_state("pending", version=1, created_at=now - dt.timedelta(hours=1))
    old = package_in_state("pending", version=2, created_at=now - dt.timedelta(hours=DEFAULT_SLA_HOURS + 5))
    signoff_row(old, make_user("fay", "fairness"), "fairness")
    package_in_state("approved", version=3)
    return {"ok_run": ok, "delivered": delivered}


def collect(now: dt.datetime) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in GovernanceCollector(now=lambda: now).collect()
        for sample in family.samples
    }


# --------------------------------------------------------------------------------------------- values


def test_sync_metrics(seeded: dict[str, Any], now: dt.datetime) -> None:
    samples = collect(now)
    ok_run: SyncRun = seeded["ok_run"]

    # Lag: the newest successful incremental/full run; a never-synced source counts from when it was added.
    assert value(samples, "governance_sync_lag_seconds", source="alpha") == (now - ok_run.finished_at).total_seconds()
    assert value(samples, "governance_sync_lag_seconds", source="beta") == pytest.approx(7200, abs=1)
    assert value(samples, "governance_sync_last_success_timestamp_seconds", source="alpha") == pytest.approx(
        ok_run.finished_at.timestamp()
    )
    assert set(series(samples, "governance_sync_last_success_timestamp_seconds")) == {(("source", "alpha"),)}
    # Enabled sources only ("prod-eu" holds the review packages and has never synced either).
    assert set(series(samples, "governance_sync_lag_seconds")) == {
        (("source", "alpha"),),
        (("source", "beta"),),
        (("source", "prod-eu"),),
    }

    # The newest finished run of each mode.
    assert value(samples, "governance_sync_last_duration_seconds", source="alpha", mode="incremental") == 40.0
    assert value(samples, "governance_sync_last_run_failed", source="alpha", mode="incremental") == 1.0
    assert value(samples, "governance_sync_last_duration_seconds", source="alpha", mode="full") == 700.0
    assert value(samples, "governance_sync_last_run_failed", source="alpha", mode="full") == 0.0
    assert {dict(labels)["mode"] for labels in series(samples, "governance_sync_last_duration_seconds")} == {
        "incremental",
        "full",
    }

    # The last hour.
    runs = series(samples, "governance_sync_runs_last_hour")
    assert runs == {
        (("mode", "incremental"), ("source", "alpha"), ("status", "succeeded")): 2.0,
        (("mode", "incremental"), ("source", "alpha"), ("status", "failed")): 1.0,
        (("mode", "incremental"), ("source", "alpha"), ("status", "running")): 1.0,
    }
    labels = {"source": "alpha", "mode": "incremental"}
    assert value(samples, "governance_sync_duration_last_hour_seconds_count", **labels) == 3.0
    assert value(samples, "governance_sync_duration_last_hour_seconds_sum", **labels) == 50.0
    assert value(samples, "governance_sync_duration_last_hour_seconds_bucket", **labels, le="2.5") == 0.0
    assert value(samples, "governance_sync_duration_last_hour_seconds_bucket", **labels, le="5.0") == 1.0
    assert value(samples, "governance_sync_duration_last_hour_seconds_bucket", **labels, le="10.0") == 2.0
    assert value(samples, "governance_sync_duration_last_hour_seconds_bucket", **labels, le="60.0") == 3.0
    assert value(samples, "governance_sync_duration_last_hour_seconds_bucket", **labels, le="+Inf") == 3.0

    assert series(samples, "governance_aws_calls_last_hour") == {
        (("operation", "DescribeModelPackage"), ("source", "alpha")): 5.0,
        (("operation", "ListModelPackages"), ("source", "alpha")): 5.0,
    }
    assert series(samples, "governance_aws_throttles_last_hour") == {
        (("operation", "ListModelPackages"), ("source", "alpha")): 2.0,
        (("operation", "unknown"), ("source", "alpha")): 3.0,
    }


def test_outbox_email_audit_and_review_metrics(seeded: dict[str, Any], now: dt.datetime) -> None:
    samples = collect(now)

    assert series(samples, "governance_outbox_pushes") == {
        (("state", "pending"),): 1.0,
        (("state", "sending"),): 1.0,
        (("state", "sent"),): 2.0,
        (("state", "failed"),): 1.0,
        (("state", "conflict"),): 0.0,
    }
    assert value(samples, "governance_outbox_oldest_undelivered_age_seconds") == pytest.approx(7200, abs=1)

    emails = series(samples, "governance_notification_emails")
    assert len(emails) == len(NotificationKind.values) * len(Notification.State.values)  # zeros included
    assert value(samples, "governance_notification_emails", kind="review_requested", state="sent") == 2.0
    assert value(samples, "governance_notification_emails", kind="decided", state="failed") == 1.0
    assert value(samples, "governance_notification_emails", kind="conflict", state="pending") == 1.0
    assert value(samples, "governance_notification_emails", kind="decided", state="sent") == 0.0
    assert value(samples, "governance_notification_emails_sent_total", kind="review_requested") == 2.0

    assert value(samples, "governance_audit_ingest_lag_seconds", source="alpha", via="lookup") == pytest.approx(
        600, abs=1
    )
    assert value(samples, "governance_audit_ingest_lag_seconds", source="alpha", via="s3") == pytest.approx(
        (now - seeded["delivered"]).total_seconds()
    )

    # v1 (1 h old) waits for all three roles; v2 (past its SLA) has its fairness sign-off.
    reviews = {labels: v for labels, v in series(samples, "governance_pending_reviews").items() if v}
    assert reviews == {
        (("role", "ml-lead"), ("sla", "ok")): 1.0,
        (("role", "fairness"), ("sla", "ok")): 1.0,
        (("role", "compliance"), ("sla", "ok")): 1.0,
        (("role", "ml-lead"), ("sla", "overdue")): 1.0,
        (("role", "compliance"), ("sla", "overdue")): 1.0,
    }
    assert value(samples, "governance_pending_reviews", role="fairness", sla="overdue") == 0.0
    assert value(samples, "governance_pending_packages") == 2.0
    assert all(v == 0.0 for v in series(samples, "governance_scrape_error").values())


def test_an_empty_database_scrapes_cleanly(client: Client, db: None) -> None:
    samples = scrape(client)
    assert value(samples, "governance_pending_packages") == 0.0
    assert value(samples, "governance_outbox_oldest_undelivered_age_seconds") == 0.0
    assert series(samples, "governance_sync_lag_seconds") == {}
    assert "process_cpu_seconds_total" in {name for name, _ in samples}  # the default registry too


def test_a_failing_part_is_reported_and_the_others_still_scrape(
    seeded: dict[str, Any], now: dt.datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("queue selector broke")

    monkeypatch.setattr("registry_app.ops.metrics.review_figures", broken)
    samples = collect(now)
    assert value(samples, "governance_scrape_error", part="reviews") == 1.0
    assert value(samples, "governance_scrape_error", part="sync") == 0.0
    assert series(samples, "governance_pending_reviews") == {}
    assert value(samples, "governance_outbox_pushes", state="pending") == 1.0


# --------------------------------------------------------------------------------------------- cost


def _grow(now: dt.datetime, factor: int) -> None:
    """More of everything the scrape reads: runs (in and out of the window), pushes, emails, pending packages."""
    alpha = RegistrySource.objects.get(name="alpha")
    for n in range(factor):
        run = SyncRunFactory(source=alpha, mode=SyncRun.Mode.INCREMENTAL)
        at(now - dt.timedelta(minutes=n % 90), run)
        package = package_in_state("pending", group_name=f"grown-{n}", version=1)
        signoff_row(package, make_user(f"lead-{n}", "ml-lead"), "ml-lead")
        PushOutbox.objects.create(package=package, kind="flags", expected_status="x")
        Notification.objects.create(package=package, kind="decided", recipient=UserFactory(), state="sent")


def test_the_scrape_makes_a_constant_number_of_queries(
    seeded: dict[str, Any], now: dt.datetime, client: Client, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    with django_assert_max_num_queries(QUERIES_PER_SCRAPE), CaptureQueriesContext(connection) as small:
        scrape(client)
    _grow(now, 25)
    with django_assert_max_num_queries(QUERIES_PER_SCRAPE), CaptureQueriesContext(connection) as large:
        samples = scrape(client)
    assert len(large.captured_queries) == len(small.captured_queries)
    assert value(samples, "governance_pending_packages") == 27.0  # the growth was seen


def test_openmetrics_is_negotiated(client: Client, db: None) -> None:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0", "Authorization": f"Bearer {TOKEN}"}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")
