"""The audit evidence's metrics: how old the audit anchor is, what the last verification found, how
far back each source's CloudTrail evidence is complete, the history backfill's progress, and the
trail log files by validation state. Part of ``metrics.GovernanceCollector`` (five queries)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from registry_app.audit.coverage import evidence_overview
from registry_app.models import AuditAnchor, AuditVerification, TrailLogFile

__all__ = ["evidence_families"]

PREFIX = "governance"


def _name(suffix: str) -> str:
    return f"{PREFIX}_{suffix}"


def evidence_families(now: dt.datetime) -> Iterator[Metric]:
    """Anchor, verification, coverage, backfill progress and trail files by validation state."""
    yield from _anchor_families(now)
    backfill = {
        name: GaugeMetricFamily(_name(f"audit_backfill_{name}"), text, labels=["source"])
        for name, text in (
            ("days_done", "Trail-history backfill: days read so far (newest first)"),
            ("days_total", "Trail-history backfill: days between the trail's first file and the first S3 pass"),
            ("events", "Trail-history backfill: CloudTrail events stored so far"),
            ("remaining_seconds", "Trail-history backfill: estimated time left (days left × time per day)"),
            ("complete", "1 when the source's whole trail has been read"),
        )
    }
    covered = GaugeMetricFamily(
        _name("audit_evidence_covered_from_timestamp_seconds"),
        "Unix time from which the source's CloudTrail evidence is complete (the as-of answer refuses earlier)",
        labels=["source"],
    )
    files = GaugeMetricFamily(
        _name("cloudtrail_log_files"),
        "Trail log files read, by validation against their signed digests (validated, pending, failed)",
        labels=["source", "state"],
    )
    for coverage in evidence_overview():
        name = coverage.source.name
        if coverage.covered_from is not None:
            covered.add_metric([name], coverage.covered_from.timestamp())
        for state in TrailLogFile.State.values:
            files.add_metric([name, state], float(coverage.files[state]))
        if not coverage.backfill:
            continue
        backfill["days_done"].add_metric([name], float(sum(b.days_done for b in coverage.backfill)))
        backfill["days_total"].add_metric([name], float(sum(b.days_total for b in coverage.backfill)))
        backfill["events"].add_metric([name], float(coverage.backfill_events))
        backfill["complete"].add_metric([name], 1.0 if coverage.backfill_done else 0.0)
        if coverage.eta_seconds is not None:
            backfill["remaining_seconds"].add_metric([name], float(coverage.eta_seconds))
    yield covered
    yield files
    yield from backfill.values()


def _anchor_families(now: dt.datetime) -> Iterator[Metric]:
    """The audit anchor's age and the last verification's result (two queries)."""
    anchor = AuditAnchor.objects.filter(error="").order_by("-anchored_at", "-pk").values_list("anchored_at").first()
    age = GaugeMetricFamily(
        _name("audit_anchor_age_seconds"), "Seconds since the audit chain's head was last anchored outside the database"
    )
    if anchor is not None:
        age.add_metric([], max(0.0, (now - anchor[0]).total_seconds()))
    yield age
    last = AuditVerification.objects.order_by("-started_at", "-pk").values_list("ok", "started_at").first()
    ok = GaugeMetricFamily(
        _name("audit_verification_ok"), "1 when the last verify_audit found the chain whole and matching its anchor"
    )
    when = GaugeMetricFamily(_name("audit_verification_last_timestamp_seconds"), "Unix time of the last verify_audit")
    if last is not None:
        ok.add_metric([], 1.0 if last[0] else 0.0)
        when.add_metric([], last[1].timestamp())
    yield ok
    yield when
