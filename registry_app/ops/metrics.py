"""Prometheus metrics computed from the database at scrape time.

Every governance figure is read from the rows the web and worker processes share, so a scrape of
any gunicorn worker returns the same numbers, whatever the number of web and Celery processes
(in-process counters would each hold a slice). The process metrics of the default registry
(``process_*``, ``python_*``) describe the one web process that answered the scrape.

A scrape makes a constant number of queries (``QUERIES_PER_SCRAPE``), whatever the number of
runs, pushes, emails or pending packages:

1. sources with their last successful sync (``freshness.source_freshness``);
2. the newest finished run per source and mode among the runs queued in the last 26 hours
   (a window function over that range of the ``(source, -queued_at)`` index);
3. the runs queued in the last hour (read through the same index; about 250 rows per source per
   hour at the default schedules), summed in Python: their statuses, a duration histogram, AWS
   calls and throttles by operation (``SyncRun.aws_calls`` / ``SyncRun.counts``);
4. pushes by state with the oldest of each state; 5. the notification outbox by kind, state and
   webhook, with the oldest due row;
6. the audit-ingest cursors;
7-9. the stored review state, through ``review.queue.review_figures``: missing approvals per role
   and SLA state, packages under review, and the latest nightly check's differences;
10-14. the audit evidence: the newest anchor and verification, every source's coverage and backfill
   (sources, then their cursors) and trail log files by validation state (``audit.coverage``).

"Last hour" figures are sliding windows (gauges, and a histogram to use with
``histogram_quantile`` directly, never with ``rate()``): summing every run ever kept would read
100,000s of JSON documents per scrape, and a counters table would need a migration.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Min, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from registry_app.audit.events import parse_event_time
from registry_app.audit.trail_files import delivery_time
from registry_app.models import (
    AuditCursor,
    Notification,
    PushOutbox,
    SyncRun,
)
from registry_app.models.signoffs import NotificationKind
from registry_app.ops.freshness import source_freshness
from registry_app.ops.metrics_evidence import evidence_families
from registry_app.ops.metrics_revalidation import QUERIES as REVALIDATION_QUERIES
from registry_app.ops.metrics_revalidation import revalidation_families
from registry_app.permissions import SIGNOFF_ROLES
from registry_app.review.queue import SLA_STATES, review_figures

log = logging.getLogger(__name__)

PREFIX = "governance"
RECENT_WINDOW = dt.timedelta(hours=1)
LAST_RUN_HORIZON = dt.timedelta(hours=26)  # the nightly full reconciliation, with slack
DURATION_BUCKETS: tuple[float, ...] = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
THROTTLE_PREFIX = "throttled_"  # SyncRun.counts keys "throttled_<Operation>"
THROTTLE_TOTAL = "throttled_attempts"  # SyncRun.counts: all operations together
QUERIES_PER_SCRAPE = 14 + REVALIDATION_QUERIES  # at most; see the module docstring


# --------------------------------------------------------------------------------------------- figures


def _name(suffix: str) -> str:
    return f"{PREFIX}_{suffix}"


@dataclass
class _Window:
    """Runs queued in the last hour, tallied per source (and mode)."""

    runs: Counter[tuple[str, str, str]]  # (source, mode, status) -> runs
    durations: dict[tuple[str, str], list[float]]  # (source, mode) -> finished runs' durations
    calls: Counter[tuple[str, str]]  # (source, operation) -> API calls
    throttles: Counter[tuple[str, str]]  # (source, operation) -> throttled attempts
    throttles_total: Counter[str]  # source -> throttled attempts, all operations ("throttled_attempts")


def _recent_runs(source_ids: list[int], since: dt.datetime) -> _Window:
    window = _Window(Counter(), defaultdict(list), Counter(), Counter(), Counter())
    rows = (
        SyncRun.objects.filter(source_id__in=source_ids, queued_at__gte=since)
        .order_by()
        .values_list("source__name", "mode", "status", "duration_s", "finished_at", "aws_calls", "counts")
    )
    for source, mode, status, duration, finished, calls, counts in rows:
        window.runs[(source, mode, status)] += 1
        if finished is not None and duration is not None:
            window.durations[(source, mode)].append(float(duration))
        for operation, n in (calls or {}).items():
            window.calls[(source, str(operation))] += _int(n)
        by_operation = {
            key[len(THROTTLE_PREFIX) :]: _int(n)
            for key, n in (counts or {}).items()
            if key.startswith(THROTTLE_PREFIX) and key != THROTTLE_TOTAL
        }
        for operation, n in by_operation.items():
            window.throttles[(source, operation)] += n
        window.throttles_total[source] += _int((counts or {}).get(THROTTLE_TOTAL, 0))
    return window


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _histogram(values: list[float]) -> tuple[list[tuple[str, float]], float]:
    buckets = [(str(float(bound)), float(sum(1 for v in values if v <= bound))) for bound in DURATION_BUCKETS]
    buckets.append(("+Inf", float(len(values))))
    return buckets, float(sum(values))


def _last_runs(source_ids: list[int], since: dt.datetime) -> list[tuple[str, str, str, float | None]]:
    """The newest finished run of each source and mode queued since ``since``: (source, mode, status, duration).

    One query: the runs in the horizon ranked per (source, mode) by a window function (a nightly
    full reconciliation is inside a 26-hour horizon; a mode not run in it has no series).
    """
    ranked = (
        SyncRun.objects.filter(source_id__in=source_ids, queued_at__gte=since, finished_at__isnull=False)
        .annotate(rank=Window(RowNumber(), partition_by=[F("source_id"), F("mode")], order_by=F("queued_at").desc()))
        .filter(rank=1)
        .order_by("source__name", "mode")
    )
    return list(ranked.values_list("source__name", "mode", "status", "duration_s"))


def _lag(now: dt.datetime, value: Any) -> float | None:
    moment = parse_event_time(value) if value else None
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def _audit_lags(now: dt.datetime) -> dict[tuple[str, str], float]:
    """(source, via) -> seconds behind: LookupEvents since the end of the last complete pass (the
    most behind pass), trail files since the delivery time of the newest file read."""
    lags: dict[tuple[str, str], float] = {}
    rows = AuditCursor.objects.filter(
        source__enabled=True, kind__in=[AuditCursor.Kind.LOOKUP, AuditCursor.Kind.S3]
    ).values_list("source__name", "kind", "position")
    for source, kind, position in rows:
        position = position if isinstance(position, Mapping) else {}
        if kind == AuditCursor.Kind.LOOKUP:
            passes = position.get("passes") or {}
            found = [_lag(now, state.get("done_until")) for state in passes.values() if isinstance(state, Mapping)]
            values = [v for v in found if v is not None]
            if values:
                lags[(source, "lookup")] = max(values)
        else:
            roots = position.get("roots") or {}
            times = [
                delivery_time(state.get("last_key") or "") for state in roots.values() if isinstance(state, Mapping)
            ]
            newest = max((t for t in times if t is not None), default=None)
            if newest is not None:
                lags[(source, "s3")] = max(0.0, (now - newest).total_seconds())
    return lags


def _pending_reviews(now: dt.datetime) -> tuple[Counter[tuple[str, str]], int, Any]:
    """((role, sla) -> packages still needing a sign-off in that role, packages under review, the
    latest review-state check), from the stored review state the queue pages read."""
    counts, total, check = review_figures(now)
    return Counter(counts), total, check


# --------------------------------------------------------------------------------------------- collector


class GovernanceCollector(Collector):
    """Yields the governance metric families; each part is read independently, so one failing query
    drops only its own families (``governance_scrape_error{part}`` says which)."""

    def __init__(self, now: Callable[[], dt.datetime] = timezone.now) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        errors = GaugeMetricFamily(
            _name("scrape_error"), "1 when this part of the scrape failed (see the log)", labels=["part"]
        )
        parts: list[tuple[str, Callable[[dt.datetime], Iterable[Metric]]]] = [
            ("sync", self._sync),
            ("outbox", self._outbox),
            ("notifications", self._notifications),
            ("audit", self._audit),
            ("evidence", self._evidence),
            ("reviews", self._reviews),
            ("revalidation", revalidation_families),
        ]
        for part, produce in parts:
            try:
                families = list(produce(now))
            except Exception:  # noqa: BLE001 - one broken part must not hide the others
                log.exception("metrics: the %s part failed", part)
                errors.add_metric([part], 1.0)
                continue
            errors.add_metric([part], 0.0)
            yield from families
        yield errors

    # -- sync --------------------------------------------------------------------------------
    def _sync(self, now: dt.datetime) -> Iterator[Metric]:
        sources = source_freshness()
        lag = GaugeMetricFamily(
            _name("sync_lag_seconds"),
            "Seconds since the last successful incremental or full sync (since the source was added if none)",
            labels=["source"],
        )
        last_success = GaugeMetricFamily(
            _name("sync_last_success_timestamp_seconds"),
            "Unix time the last successful incremental or full sync finished",
            labels=["source"],
        )
        for source in sources:
            lag.add_metric([source.name], source.lag_seconds(now))
            if source.last_success_at is not None:
                last_success.add_metric([source.name], source.last_success_at.timestamp())
        yield lag
        yield last_success

        source_ids = [source.pk for source in sources]
        last_duration = GaugeMetricFamily(
            _name("sync_last_duration_seconds"),
            "Duration of the newest finished run queued in the last 26 hours, per source and mode",
            labels=["source", "mode"],
        )
        last_failed = GaugeMetricFamily(
            _name("sync_last_run_failed"),
            "1 when the newest finished run (last 26 hours) of this source and mode failed",
            labels=["source", "mode"],
        )
        for source, mode, status, duration in _last_runs(source_ids, now - LAST_RUN_HORIZON):
            if duration is not None:
                last_duration.add_metric([source, mode], float(duration))
            last_failed.add_metric([source, mode], 1.0 if status == SyncRun.Status.FAILED else 0.0)
        yield last_duration
        yield last_failed

        window = _recent_runs(source_ids, now - RECENT_WINDOW)
        runs = GaugeMetricFamily(
            _name("sync_runs_last_hour"),
            "Runs queued in the last hour, by source, mode and status",
            labels=["source", "mode", "status"],
        )
        for (source, mode, status), n in sorted(window.runs.items()):
            runs.add_metric([source, mode, status], float(n))
        yield runs
        durations = HistogramMetricFamily(
            _name("sync_duration_last_hour_seconds"),
            "Durations of the finished runs queued in the last hour (a sliding window: use histogram_quantile "
            "directly, not rate())",
            labels=["source", "mode"],
        )
        for (source, mode), values in sorted(window.durations.items()):
            buckets, total = _histogram(values)
            durations.add_metric([source, mode], buckets, total)
        yield durations
        calls = GaugeMetricFamily(
            _name("aws_calls_last_hour"),
            "AWS API calls (logical calls, retries excluded) by the runs queued in the last hour",
            labels=["source", "operation"],
        )
        for (source, operation), n in sorted(window.calls.items()):
            calls.add_metric([source, operation], float(n))
        yield calls
        throttles = GaugeMetricFamily(
            _name("aws_throttles_last_hour"),
            "Throttled AWS attempts (retried by botocore) in the runs queued in the last hour",
            labels=["source", "operation"],
        )
        by_source: Counter[str] = Counter()
        for (source, operation), n in sorted(window.throttles.items()):
            throttles.add_metric([source, operation], float(n))
            by_source[source] += n
        for source, total in sorted(window.throttles_total.items()):
            # Runs recorded before throttles were kept per operation carry only the total.
            if total > by_source[source]:
                throttles.add_metric([source, "unknown"], float(total - by_source[source]))
        yield throttles

    # -- outbox ------------------------------------------------------------------------------
    def _outbox(self, now: dt.datetime) -> Iterator[Metric]:
        rows = {
            state: (n, oldest)
            for state, n, oldest in PushOutbox.objects.order_by()
            .values("state")
            .annotate(n=Count("pk"), oldest=Min("created_at"))
            .values_list("state", "n", "oldest")
        }
        depth = GaugeMetricFamily(_name("outbox_pushes"), "UpdateModelPackage pushes by state", labels=["state"])
        for state in PushOutbox.State.values:
            depth.add_metric([state], float(rows.get(state, (0, None))[0]))
        yield depth
        oldest = [rows[s][1] for s in PushOutbox.UNDELIVERED_STATES if s in rows and rows[s][1] is not None]
        age = GaugeMetricFamily(
            _name("outbox_oldest_undelivered_age_seconds"),
            "Age of the oldest push not yet delivered (pending, sending or failed and retrying); 0 when none",
        )
        age.add_metric([], max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0)
        yield age

    # -- notifications -----------------------------------------------------------------------
    def _notifications(self, now: dt.datetime) -> Iterator[Metric]:
        # One query: the outbox by kind, state and target (a webhook's name, or none for e-mail), with the
        # oldest due-but-unsent row of each group (how far the sender is behind).
        grouped = (
            Notification.objects.order_by()
            .values("kind", "state", "webhook__name")
            .annotate(
                n=Count("pk"),
                oldest_due=Min("deliver_after", filter=Q(state=Notification.State.PENDING, deliver_after__lte=now)),
            )
            .values_list("kind", "state", "webhook__name", "n", "oldest_due")
        )
        rows: Counter[tuple[str, str]] = Counter()
        hooks: Counter[tuple[str, str]] = Counter()
        oldest: list[dt.datetime] = []
        for kind, state, webhook, n, oldest_due in grouped:
            if webhook is None:
                rows[(kind, state)] += n
            else:
                hooks[(webhook, state)] += n
            if oldest_due is not None:
                oldest.append(oldest_due)
        emails = GaugeMetricFamily(
            _name("notification_emails"),
            "Notification e-mails (outbox rows) by kind and state (pending includes retrying; failed: gave up)",
            labels=["kind", "state"],
        )
        for kind in NotificationKind.values:
            for state in Notification.State.values:
                emails.add_metric([kind, state], float(rows[(kind, state)]))
        yield emails
        sent = CounterMetricFamily(
            _name("notification_emails_sent"), "Notification emails sent, by kind", labels=["kind"]
        )
        for kind in NotificationKind.values:
            sent.add_metric([kind], float(rows[(kind, Notification.State.SENT)]))
        yield sent
        deliveries = GaugeMetricFamily(
            _name("webhook_deliveries"),
            "Slack / Teams / webhook deliveries (outbox rows) by endpoint and state",
            labels=["webhook", "state"],
        )
        for webhook in sorted({name for name, _ in hooks}):
            for state in Notification.State.values:
                deliveries.add_metric([webhook, state], float(hooks[(webhook, state)]))
        yield deliveries
        behind = GaugeMetricFamily(
            _name("notification_oldest_due_age_seconds"),
            "Seconds since the oldest notification that is due (and not being retried later) should have gone",
        )
        behind.add_metric([], max(0.0, (now - min(oldest)).total_seconds()) if oldest else 0.0)
        yield behind

    # -- audit ingest ------------------------------------------------------------------------
    def _audit(self, now: dt.datetime) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            _name("audit_ingest_lag_seconds"),
            "CloudTrail ingest: seconds since the end of the last complete LookupEvents pass (via=lookup), "
            "or since the delivery of the newest trail file read (via=s3)",
            labels=["source", "via"],
        )
        for (source, via), seconds in sorted(_audit_lags(now).items()):
            lag.add_metric([source, via], seconds)
        yield lag

    # -- audit evidence ----------------------------------------------------------------------
    def _evidence(self, now: dt.datetime) -> Iterator[Metric]:
        yield from evidence_families(now)

    # -- reviews -----------------------------------------------------------------------------
    def _reviews(self, now: dt.datetime) -> Iterator[Metric]:
        counts, pending, check = _pending_reviews(now)
        reviews = GaugeMetricFamily(
            _name("pending_reviews"),
            "Pending packages still needing a sign-off in this role, by review SLA state",
            labels=["role", "sla"],
        )
        roles = list(SIGNOFF_ROLES) + sorted({role for role, _ in counts} - set(SIGNOFF_ROLES))
        for role in roles:
            for sla in SLA_STATES:
                reviews.add_metric([role, sla], float(counts[(role, sla)]))
        yield reviews
        total = GaugeMetricFamily(_name("pending_packages"), "Live packages pending in the registry")
        total.add_metric([], float(pending))
        yield total
        differences = GaugeMetricFamily(
            _name("review_state_differences"),
            "Stored review-state rows the latest nightly check found missing, extra or different (and fixed)",
        )
        checked_at = GaugeMetricFamily(
            _name("review_state_check_timestamp_seconds"), "Unix time the latest review-state check finished"
        )
        if check is not None:
            differences.add_metric([], float(check.differences))
            checked_at.add_metric([], check.finished_at.timestamp())
        yield differences
        yield checked_at


class _DefaultRegistry(Collector):
    """The process-wide default registry (process and Python metrics of this web process)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DefaultRegistry())
    registry.register(GovernanceCollector())
    return registry
