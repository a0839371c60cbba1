"""Timeline items: one stored row (observation, CloudTrail call, sign-off, decision, push, notification,
deployment window, audit-log entry) as the line a timeline, the search and the exports show.

Each ``*_item`` function turns one row into a ``TimelineItem``; ``*_raw`` builds the evidence JSON an
item (and an auditor pack) carries. Pure formatting of rows already read: no queries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from registry_app.audit.chain import canonical_content
from registry_app.audit.outside_rules import request_status
from registry_app.audit.paging import Cursor, int_ident, uuid_ident
from registry_app.audit.validation import event_validation
from registry_app.audit.values import iso, to_json, username
from registry_app.models import (
    AuditLogEntry,
    CloudTrailEvent,
    Decision,
    EndpointDeployment,
    Notification,
    PackageObservation,
    PushOutbox,
    SignOff,
)
from registry_app.review.policy_versions import version_label

__all__ = [
    "KINDS",
    "TimelineItem",
    "audit_item",
    "audit_raw",
    "cloudtrail_item",
    "decision_item",
    "deployment_item",
    "deployment_raw",
    "notification_item",
    "observation_item",
    "push_item",
    "push_raw",
    "signoff_item",
    "signoff_raw",
    "signoff_stale_item",
]

# Display kinds (the ?kind= filter) and their labels.
KINDS: dict[str, str] = {
    "observation": "Registry observation",
    "cloudtrail": "CloudTrail call",
    "signoff": "Sign-off",
    "decision": "Decision",
    "push": "Registry push",
    "notification": "Notification",
    "deployment": "Deployment",
    "audit": "Audit log",
}


@dataclass
class TimelineItem:
    at: dt.datetime
    kind: str
    source: str
    ident: str
    actor: str
    title: str
    detail: str
    evidence_id: str
    raw: Any
    package_label: str = ""
    package_group: str = ""
    package_version: int | None = None
    endpoint_name: str = ""
    tone: str = "neutral"  # badge colour class suffix
    # CloudTrail calls: their log file's validation (validated / no digest yet / validation failed: why).
    validation: str = ""
    validation_tone: str = ""
    outside: Any = None  # an outside_list.OutsideMark: a decision the dashboard did not push

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.at, self.source, self.ident)

    @property
    def sort_key(self) -> tuple[dt.datetime, str, str]:
        return (self.at, self.source, self.ident)

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def raw_json(self) -> str:
        return to_json(self.raw)

    def export_row(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "kind": self.kind,
            "actor": self.actor,
            "title": self.title,
            "detail": self.detail,
            "package": self.package_label,
            "endpoint": self.endpoint_name,
            "evidence_id": self.evidence_id,
            "validation": self.validation,
            "raw": self.raw,
        }


def _package_label(row: Any) -> tuple[str, str, int | None]:
    group = getattr(row, "_pkg_group", None)
    version = getattr(row, "_pkg_version", None)
    if group is None or version is None:
        return "", "", None
    return f"{group} v{version}", str(group), int(version)


def _with_package(item: TimelineItem, row: Any) -> TimelineItem:
    item.package_label, item.package_group, item.package_version = _package_label(row)
    return item


def _status_tone(status: str) -> str:
    return {"Approved": "approved", "Rejected": "rejected", "PendingManualApproval": "pending"}.get(status, "neutral")


def observation_item(row: PackageObservation) -> TimelineItem:
    changes = row.changes if isinstance(row.changes, dict) else {}
    names = ", ".join(sorted(str(k) for k in changes)) or "no field changes"
    status = changes.get("approval_status")
    detail = names
    tone = "running"
    if isinstance(status, list | tuple) and len(status) == 2:
        detail = f"approval status {status[0] or '(new)'} → {status[1]}; " + names
        tone = _status_tone(str(status[1] or ""))
    return _with_package(
        TimelineItem(
            at=row.observed_at,
            kind="observation",
            source="observation",
            ident=int_ident(row.pk),
            actor="registry sync",
            title=f"Registry {row.get_change_display().lower()}",
            detail=detail,
            evidence_id=f"observation:{row.pk}",
            raw={
                "id": row.pk,
                "change": row.change,
                "changes": changes,
                "observed_at": iso(row.observed_at),
                "sync_run_id": row.sync_run_id,
            },
            tone=tone,
        ),
        row,
    )


def cloudtrail_item(row: CloudTrailEvent) -> TimelineItem:
    status = request_status(row.raw)
    detail = row.resource_name or row.endpoint_name or ""
    if status:
        detail = f"modelApprovalStatus={status}; {detail}"
    if row.error_code:
        detail = f"FAILED {row.error_code}; {detail}"
    validation = event_validation(row)
    return _with_package(
        TimelineItem(
            at=row.event_time,
            kind="cloudtrail",
            source="cloudtrail",
            ident=int_ident(row.pk),
            actor=row.actor_name or row.actor_arn,
            title=row.event_name,
            detail=detail,
            evidence_id=f"cloudtrail:{row.event_id}",
            raw=row.raw,
            endpoint_name=row.endpoint_name,
            tone="rejected" if row.error_code else _status_tone(status),
            validation=validation.text,
            validation_tone=validation.tone,
        ),
        row,
    )


def policy_version_fields(row: SignOff | Decision) -> dict[str, Any]:
    """The policy version a sign-off or decision was made under (``policy_version`` selected with it)."""
    return {"policy_version": version_label(row.policy_version), "policy_version_number": row_version_number(row)}


def row_version_number(row: SignOff | Decision) -> int | None:
    return row.policy_version.number if row.policy_version is not None else None


def signoff_raw(row: SignOff) -> dict[str, Any]:
    return {
        "id": row.pk,
        "user": username(row.user),
        "role": row.role,
        "decision": row.decision,
        "comment": row.comment,
        "fingerprint": row.fingerprint,
        "fingerprint_detail": row.fingerprint_detail,
        "created_at": iso(row.created_at),
        "stale_at": iso(row.stale_at),
        "stale_reason": row.stale_reason,
        **policy_version_fields(row),
    }


def signoff_item(row: SignOff) -> TimelineItem:
    return _with_package(
        TimelineItem(
            at=row.created_at,
            kind="signoff",
            source="signoff",
            ident=int_ident(row.pk),
            actor=username(row.user),
            title=f"Sign-off: {row.get_decision_display().lower()} as {row.role}",
            detail=(row.comment or "")[:300],
            evidence_id=f"signoff:{row.pk}",
            raw=signoff_raw(row),
            tone="approved" if row.decision == SignOff.Decision.APPROVE else "rejected",
        ),
        row,
    )


def signoff_stale_item(row: SignOff) -> TimelineItem:
    assert row.stale_at is not None
    return _with_package(
        TimelineItem(
            at=row.stale_at,
            kind="signoff",
            source="signoff.stale",
            ident=int_ident(row.pk),
            actor="",
            title=f"Sign-off by {username(row.user)} ({row.role}) became stale",
            detail=row.stale_reason or "the reviewed content changed after the sign-off",
            evidence_id=f"signoff:{row.pk}",
            raw=signoff_raw(row),
            tone="pending",
        ),
        row,
    )


def decision_item(row: Decision) -> TimelineItem:
    return _with_package(
        TimelineItem(
            at=row.created_at,
            kind="decision",
            source="decision",
            ident=int_ident(row.pk),
            actor=username(row.decided_by),
            title=f"Decision ({row.get_kind_display()}): {row.status}",
            detail=row.description[:300],
            evidence_id=f"decision:{row.pk}",
            raw={
                "id": row.pk,
                "kind": row.kind,
                "status": row.status,
                "description": row.description,
                "decided_by": username(row.decided_by),
                "created_at": iso(row.created_at),
                **policy_version_fields(row),
            },
            tone=_status_tone(row.status),
        ),
        row,
    )


def push_raw(row: PushOutbox) -> dict[str, Any]:
    return {
        "id": str(row.pk),
        "kind": row.kind,
        "state": row.state,
        "decision_id": row.decision_id,
        "signoff_id": row.signoff_id,
        "target_status": row.target_status,
        "target_description": row.target_description,
        "flags": row.flags,
        "expected_status": row.expected_status,
        "acting_username": row.acting_username,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "conflict_detail": row.conflict_detail,
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
        "updated_at": iso(row.updated_at),
    }


def _push_what(row: PushOutbox) -> str:
    if row.target_status:
        return f"status {row.target_status}"
    return "flags " + ", ".join(f"{k}={v}" for k, v in sorted((row.flags or {}).items()))


def push_item(row: PushOutbox, source: str) -> TimelineItem:
    if source == "push.created":
        at, title, tone = row.created_at, "Push queued", "muted"
    elif source == "push.sent":
        assert row.sent_at is not None
        at, title, tone = row.sent_at, "Push sent to SageMaker", "approved"
    else:
        at, title, tone = row.updated_at, f"Push {row.get_state_display().lower()}", "rejected"
    detail = _push_what(row)
    if source == "push.outcome" and row.last_error:
        detail = f"{detail}; {row.last_error[:240]}"
    return _with_package(
        TimelineItem(
            at=at,
            kind="push",
            source=source,
            ident=uuid_ident(row.pk),
            actor=row.acting_username,
            title=title,
            detail=detail,
            evidence_id=f"push:{row.pk}",
            raw=push_raw(row),
            tone=tone,
        ),
        row,
    )


def notification_item(row: Notification) -> TimelineItem:
    return _with_package(
        TimelineItem(
            at=row.created_at,
            kind="notification",
            source="notification",
            ident=int_ident(row.pk),
            actor="",
            title=f"Email “{row.get_kind_display()}” to {username(row.recipient)}",
            detail=row.get_state_display() + (f"; {row.last_error[:200]}" if row.last_error else ""),
            evidence_id=f"notification:{row.pk}",
            raw={
                "id": row.pk,
                "kind": row.kind,
                "recipient": username(row.recipient),
                "key": row.key,
                "state": row.state,
                "attempts": row.attempts,
                "last_error": row.last_error,
                "created_at": iso(row.created_at),
                "sent_at": iso(row.sent_at),
            },
            tone="muted",
        ),
        row,
    )


def deployment_raw(row: EndpointDeployment) -> dict[str, Any]:
    return {
        "id": row.pk,
        "endpoint_name": row.endpoint_name,
        "variant_name": row.variant_name,
        "config_name": row.config_name,
        "model_name": row.model_name,
        "package_arn": row.package_arn,
        "weight": row.weight,
        "started_at": iso(row.started_at),
        "ended_at": iso(row.ended_at),
        "evidence": row.evidence,
    }


def deployment_item(row: EndpointDeployment, source: str) -> TimelineItem:
    started = source == "deployment.start"
    at = row.started_at if started else row.ended_at
    assert at is not None
    weight = f" (weight {row.weight:g})" if row.weight is not None else ""
    return _with_package(
        TimelineItem(
            at=at,
            kind="deployment",
            source=source,
            ident=int_ident(row.pk),
            actor="",
            title=f"{'Serving on' if started else 'Stopped serving on'} {row.endpoint_name}/{row.variant_name}",
            detail=f"{row.package_arn or row.model_name}{weight}; config {row.config_name or '?'}",
            evidence_id=f"deployment:{row.pk}",
            raw=deployment_raw(row),
            endpoint_name=row.endpoint_name,
            tone="running" if started else "muted",
        ),
        row,
    )


def audit_raw(row: AuditLogEntry) -> dict[str, Any]:
    return {**canonical_content(row), "id": row.pk, "prev_hash": row.prev_hash, "hash": row.hash}


def audit_item(row: AuditLogEntry) -> TimelineItem:
    return _with_package(
        TimelineItem(
            at=row.created_at,
            kind="audit",
            source="audit",
            ident=int_ident(row.seq),
            actor=row.actor_name,
            title=row.action,
            detail=(row.message or row.subject_repr)[:300],
            evidence_id=f"audit:#{row.seq}",
            raw=audit_raw(row),
            endpoint_name=row.subject_id if row.subject_type == "endpoint" else "",
            tone="info",
        ),
        row,
    )
