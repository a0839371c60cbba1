"""What an auditor pack says about the evidence itself: each CloudTrail record's validation state
(its trail log file checked against a signed digest), and the audit chain's state with the anchor
written outside the database at export time. Reads only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from registry_app.audit.chain import verify_audit_chain
from registry_app.audit.validation import event_validation
from registry_app.audit.values import iso
from registry_app.models import AuditAnchor, AuditVerification, CloudTrailEvent

__all__ = ["VALIDATION_NOTE", "chain_state", "validation_rows"]

VALIDATION_NOTE = (
    "cloudtrail_validation.json  per record: its trail log file and whether that file matches its signed "
    "CloudTrail digest (validated / no digest yet / validation failed: why)"
)


def validation_rows(events: QuerySet[CloudTrailEvent]) -> Iterator[dict[str, Any]]:
    """One row per event (in the queryset's order), streamed; the file is joined, not queried per row."""
    for event in events.select_related("trail_file").iterator(chunk_size=1000):
        validation = event_validation(event).as_dict()
        yield {"event_id": event.event_id, "event_time": iso(event.event_time), "via": event.via, **validation}


def chain_state() -> dict[str, Any]:
    """The whole chain's verification now, and the newest anchor (written by the export's view)."""
    report = verify_audit_chain()
    anchor = AuditAnchor.objects.order_by("-anchored_at", "-pk").first()
    last = AuditVerification.objects.order_by("-started_at", "-pk").first()
    return {
        "verified_at": timezone.now().isoformat(),
        "ok": report.ok,
        "entries_verified": report.checked,
        "head_seq": report.head_seq,
        "head_hash": report.head_hash,
        "problem": str(report.problem) if report.problem else None,
        "anchor": None
        if anchor is None
        else {
            "seq": anchor.seq,
            "hash": anchor.hash,
            "anchored_at": iso(anchor.anchored_at),
            "location": anchor.location,
            "written": not anchor.error,
            "error": anchor.error or None,
            "matches_head": anchor.seq == report.head_seq and (anchor.hash or "") == (report.head_hash or ""),
        },
        "last_verification_against_anchor": None
        if last is None
        else {"at": iso(last.started_at), "ok": last.ok, "problem": last.problem or None, "detail": last.detail},
    }
