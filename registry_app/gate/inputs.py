"""Everything the deploy gate reads about a batch of packages, in a constant number of queries.

``load_inputs(packages)`` runs seven queries whatever the number of packages: pushes, decisions,
sign-offs (with users), flagged outside decisions (with their CloudTrail events), the CloudTrail
calls that set a status, metrics and evaluation reports. Reads only.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from registry_app.models import (
    CloudTrailEvent,
    Decision,
    EvaluationReport,
    Metric,
    ModelPackage,
    OutsideDecision,
    PushOutbox,
    SignOff,
)

__all__ = ["STATUS_EVENT_NAMES", "PackageInputs", "load_inputs", "nearest_event", "request_status"]

# The CloudTrail calls that can set a package's ModelApprovalStatus.
STATUS_EVENT_NAMES = ("UpdateModelPackage", "CreateModelPackage")
_EVENT_FIELDS = ("pk", "event_id", "event_time", "event_name", "actor_arn", "actor_name", "package_id", "raw")


@dataclass
class PackageInputs:
    package: ModelPackage
    pushes: list[PushOutbox] = field(default_factory=list)  # newest first
    decisions: list[Decision] = field(default_factory=list)  # newest first
    signoffs: list[SignOff] = field(default_factory=list)  # oldest first
    outside: list[OutsideDecision] = field(default_factory=list)  # newest first
    status_events: list[CloudTrailEvent] = field(default_factory=list)  # newest first
    metrics: list[Metric] = field(default_factory=list)
    reports: list[EvaluationReport] = field(default_factory=list)


def request_status(raw: Any) -> str:
    """``modelApprovalStatus`` of a CloudTrail record's ``requestParameters`` (either casing)."""
    params = raw.get("requestParameters") if isinstance(raw, dict) else None
    if not isinstance(params, dict):
        return ""
    for key in ("modelApprovalStatus", "ModelApprovalStatus"):
        if isinstance(params.get(key), str):
            return str(params[key])
    return ""


def nearest_event(
    events: Iterable[CloudTrailEvent], status: str, at: dt.datetime, *, before: dt.timedelta, after: dt.timedelta
) -> CloudTrailEvent | None:
    """The call that set ``status`` closest to ``at`` within ``[at - before, at + after]``; calls
    before ``at`` win ties (the mirror and the outbox see a change after it happened)."""
    found = [e for e in events if request_status(e.raw) == status and at - before <= e.event_time <= at + after]
    if not found:
        return None
    return min(found, key=lambda e: (abs((at - e.event_time).total_seconds()), e.event_time > at, -e.pk))


def load_inputs(packages: Sequence[ModelPackage]) -> dict[int, PackageInputs]:
    """Inputs per package id (packages with ``group``, ``source`` and ``model_card`` selected)."""
    found = {p.pk: PackageInputs(package=p) for p in packages}
    if not found:
        return found
    ids = list(found)
    for push in PushOutbox.objects.filter(package_id__in=ids).order_by("-created_at"):
        found[push.package_id].pushes.append(push)
    for decision in (
        Decision.objects.filter(package_id__in=ids).select_related("decided_by").order_by("-created_at", "-pk")
    ):
        found[decision.package_id].decisions.append(decision)
    for signoff in SignOff.objects.filter(package_id__in=ids).select_related("user").order_by("created_at", "pk"):
        found[signoff.package_id].signoffs.append(signoff)
    for outside in (
        OutsideDecision.objects.filter(package_id__in=ids)
        .select_related("event")
        .defer("event__raw")
        .order_by("-observed_at", "-pk")
    ):
        found[outside.package_id].outside.append(outside)
    by_arn = {p.arn: p.pk for p in packages}
    events = (
        CloudTrailEvent.objects.filter(Q(package_id__in=ids) | Q(resource_name__in=list(by_arn)))
        .filter(event_name__in=STATUS_EVENT_NAMES, error_code="")
        .only(*_EVENT_FIELDS, "resource_name")
        .order_by("-event_time", "-pk")
    )
    for event in events:
        pk = event.package_id if event.package_id in found else by_arn.get(event.resource_name)
        if pk in found:
            found[pk].status_events.append(event)
    for metric in Metric.objects.filter(package_id__in=ids).order_by("kind", "stage", "name", "facet", "pk"):
        found[metric.package_id].metrics.append(metric)
    reports = EvaluationReport.objects.filter(package_id__in=ids).only(
        "pk", "package_id", "slot", "sha256", "content_digest", "s3_uri"
    )
    grouped: dict[int, list[EvaluationReport]] = defaultdict(list)
    for report in reports:
        grouped[report.package_id].append(report)
    for pk, rows in grouped.items():
        found[pk].reports = rows
    return found
