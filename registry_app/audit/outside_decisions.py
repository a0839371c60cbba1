"""Decisions made outside the dashboard: approval-status changes no dashboard push explains.

When the mirror sees a package's approval status change (Studio, the CLI, a pipeline step), the
sync hook calls ``package_observed_status_change``. If no push of the dashboard (sent or being
sent, to that very status, recently) explains it, an ``OutsideDecision`` row flags the package,
with the CloudTrail ``UpdateModelPackage`` call that made the change when one has been ingested
(``attach_cloudtrail_evidence`` retries the match after every CloudTrail ingest), an audit entry,
and one email to the compliance officers after commit.

Email idempotency: ``OutsideDecision.notified_at`` is claimed with a conditional UPDATE (NULL ->
now) before sending and put back to NULL when SMTP fails, so a row is mailed once;
``outside_decisions_notify_pending`` (for beat) retries the ones that failed. A worker killed
between the claim and the send leaves the row marked as notified: at most once, never twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from registry_app.audit.log import audit_append
from registry_app.audit.outside_rules import PUSH_EXPLAINS_WITHIN, STATUS_EVENT_NAMES, request_status
from registry_app.models import AuditLogEntry, CloudTrailEvent, ModelPackage, OutsideDecision, PushOutbox
from registry_app.models.registry import ApprovalStatus
from registry_app.notifications.delivery import SUBJECT_PREFIX, one_line, package_url
from registry_app.permissions import COMPLIANCE_ROLE

__all__ = [
    "MATCH_AFTER",
    "MATCH_BEFORE",
    "attach_cloudtrail_evidence",
    "explaining_push",
    "matching_cloudtrail_event",
    "outside_decision_notify",
    "outside_decisions_notify_pending",
    "package_observed_status_change",
    "record_outside_decision",
]

log = logging.getLogger(__name__)

# CloudTrail calls considered for a change observed at T: from T - MATCH_BEFORE to T + MATCH_AFTER
# (the mirror sees a change after it happened; AWS and our clock may differ by a little).
MATCH_BEFORE = dt.timedelta(days=7)
MATCH_AFTER = dt.timedelta(minutes=15)
MATCH_CANDIDATES = 200
EXPLAINING_STATES = (PushOutbox.State.SENT, PushOutbox.State.SENDING)
TEMPLATE = "registry_app/audit/email/outside_decision"
Via = AuditLogEntry.Via


# --------------------------------------------------------------------------------------------- matching


def explaining_push(package: ModelPackage, to_status: str, observed_at: dt.datetime) -> PushOutbox | None:
    """The dashboard's own push that made this change, if any (one query)."""
    since = observed_at - PUSH_EXPLAINS_WITHIN
    recent = Q(sent_at__gte=since) | Q(updated_at__gte=since) | Q(created_at__gte=since)
    return (
        PushOutbox.objects.filter(package=package, state__in=EXPLAINING_STATES, target_status=to_status)
        .filter(recent)
        .order_by("-created_at")
        .first()
    )


def matching_cloudtrail_event(
    package: ModelPackage, to_status: str, observed_at: dt.datetime, *, exclude_ids: Iterable[int] = ()
) -> CloudTrailEvent | None:
    """The successful UpdateModelPackage (or CreateModelPackage) call that set ``to_status`` on the
    package, closest in time to ``observed_at``; calls before the observation win ties. One query."""
    candidates = (
        CloudTrailEvent.objects.filter(Q(package=package) | Q(resource_name=package.arn))
        .filter(
            event_name__in=STATUS_EVENT_NAMES,
            error_code="",
            event_time__gte=observed_at - MATCH_BEFORE,
            event_time__lte=observed_at + MATCH_AFTER,
        )
        .exclude(pk__in=list(exclude_ids))
        .order_by("-event_time", "-id")[:MATCH_CANDIDATES]
    )
    matches = [event for event in candidates if request_status(event.raw) == to_status]
    if not matches:
        return None
    return min(matches, key=lambda e: (abs((observed_at - e.event_time).total_seconds()), e.event_time > observed_at))


def _attach(decision: OutsideDecision, event: CloudTrailEvent) -> None:
    decision.event = event
    decision.actor_name = event.actor_name
    decision.actor_arn = event.actor_arn
    decision.changed_at = event.event_time


def _used_event_ids(package: ModelPackage) -> list[int]:
    return list(OutsideDecision.objects.filter(package=package, event__isnull=False).values_list("event_id", flat=True))


# --------------------------------------------------------------------------------------------- services


def package_observed_status_change(
    package: ModelPackage, from_status: str | None, to_status: str | None, observed_at: dt.datetime | None = None
) -> OutsideDecision | None:
    """For the sync hook: the mirror saw ``package``'s approval status go from ``from_status`` to
    ``to_status`` (``from_status`` empty for a package first seen). Returns the OutsideDecision when
    the change is flagged, else None.

    Not flagged: no change, a new package registered as PendingManualApproval, or a change a
    dashboard push explains. Runs in a savepoint of the sync's transaction; a failure is logged and
    never breaks the sync (the next observation cannot recover it, so it is logged as an error).
    """
    from_status, to_status = str(from_status or ""), str(to_status or "")
    observed_at = observed_at or timezone.now()
    if not to_status or from_status == to_status:
        return None
    if not from_status and to_status == ApprovalStatus.PENDING:
        return None
    try:
        with transaction.atomic():
            if explaining_push(package, to_status, observed_at) is not None:
                return None
            return record_outside_decision(
                package, from_status=from_status, to_status=to_status, observed_at=observed_at
            )
    except Exception:  # noqa: BLE001 - the sync must go on; the error is loud in the logs
        log.exception(
            "could not record the outside decision on package %s (%s -> %s)", package.pk, from_status, to_status
        )
        return None


def record_outside_decision(
    package: ModelPackage, *, from_status: str, to_status: str, observed_at: dt.datetime
) -> OutsideDecision:
    """Flag a status change made outside the dashboard. Idempotent per (package, from, to, observed_at).

    Transaction (a savepoint in the caller's): the OutsideDecision with the closest matching
    CloudTrail call (actor, time) when one is known, and an audit entry. After commit: one email
    to the compliance role (``outside_decision_notify``). Calling it again returns the same row and
    sends nothing more.
    """
    with transaction.atomic():
        decision, created = OutsideDecision.objects.get_or_create(
            package=package,
            from_status=from_status,
            to_status=to_status,
            observed_at=observed_at,
        )
        if not created:
            return decision
        event = matching_cloudtrail_event(package, to_status, observed_at, exclude_ids=_used_event_ids(package))
        if event is not None:
            _attach(decision, event)
            decision.save(update_fields=["event", "actor_name", "actor_arn", "changed_at"])
        who = f" by {decision.actor_name}" if decision.actor_name else " (actor not yet known from CloudTrail)"
        audit_append(
            "outside_decision.flagged",
            actor=decision.actor_name or None,
            via=Via.SYNC,
            subject=decision,
            package=package,
            before={"approval_status": from_status},
            after={
                "approval_status": to_status,
                "cloudtrail_event_id": event.event_id if event else None,
                "changed_at": decision.changed_at,
            },
            message=f"{package} changed {from_status or '(new)'} → {to_status} outside the dashboard{who}",
        )
        decision_id = decision.pk
        transaction.on_commit(lambda: outside_decision_notify(decision_id), robust=True)
    return decision


def attach_cloudtrail_evidence(*, limit: int | None = None) -> int:
    """After a CloudTrail ingest: match flagged changes that still lack their CloudTrail call.

    Per row one match query and, when found, a short transaction (conditional UPDATE on
    ``event IS NULL`` plus an audit entry), so a concurrent run attaches each event once.
    Returns how many rows got their evidence.
    """
    pending = (
        OutsideDecision.objects.filter(event__isnull=True)
        .select_related("package__group")
        .order_by("observed_at", "pk")
    )
    if limit is not None:
        pending = pending[:limit]
    attached = 0
    for decision in pending.iterator(chunk_size=200):
        event = matching_cloudtrail_event(
            decision.package,
            decision.to_status,
            decision.observed_at,
            exclude_ids=_used_event_ids(decision.package),
        )
        if event is None:
            continue
        with transaction.atomic():
            updated = OutsideDecision.objects.filter(pk=decision.pk, event__isnull=True).update(
                event=event, actor_name=event.actor_name, actor_arn=event.actor_arn, changed_at=event.event_time
            )
            if not updated:
                continue
            audit_append(
                "outside_decision.evidence",
                actor=event.actor_name or None,
                via=Via.TASK,
                subject=decision,
                package=decision.package_id,
                after={
                    "cloudtrail_event_id": event.event_id,
                    "actor_arn": event.actor_arn,
                    "changed_at": event.event_time,
                },
                message=f"CloudTrail {event.event_name} {event.event_id} attached: changed by "
                f"{event.actor_name or event.actor_arn or 'unknown'} at {event.event_time:%Y-%m-%d %H:%M:%S} UTC",
            )
        attached += 1
    return attached


# --------------------------------------------------------------------------------------------- email


def _compliance_recipients() -> list[Any]:
    return list(
        get_user_model()
        .objects.filter(groups__name=COMPLIANCE_ROLE, is_active=True)
        .exclude(email="")
        .distinct()
        .order_by("pk")
    )


def _context(decision: OutsideDecision) -> dict[str, Any]:
    package = decision.package
    return {
        "decision": decision,
        "package": package,
        "group_name": package.group.name,
        "version": package.version,
        "package_url": package_url(package),
        "timeline_url": settings.SITE_URL
        + reverse("registry:package_audit", args=[package.group.name, package.version]),
        "bypasses_url": settings.SITE_URL + reverse("registry:audit_bypasses"),
        "event_id": decision.event.event_id if decision.event_id and decision.event else "",
    }


def outside_decision_notify(decision_id: int) -> bool:
    """Email the compliance officers about one flagged change, once. Returns True when sent.

    Claims the row (``notified_at`` NULL -> now) with a conditional UPDATE; the SMTP call runs
    outside any transaction; on failure the claim is released for ``outside_decisions_notify_pending``.
    """
    decision = OutsideDecision.objects.select_related("package__group__source", "event").filter(pk=decision_id).first()
    if decision is None or decision.notified_at is not None:
        return False
    recipients = _compliance_recipients()
    if not recipients:
        log.warning("outside decision %s: nobody holds the %s role; no email sent", decision_id, COMPLIANCE_ROLE)
        return False
    now = timezone.now()
    if not OutsideDecision.objects.filter(pk=decision_id, notified_at__isnull=True).update(notified_at=now):
        return False
    context = _context(decision)
    subject = one_line(
        f"{SUBJECT_PREFIX} {decision.package.group.name} v{decision.package.version} set to "
        f"{decision.to_status} outside the dashboard"
    )
    text = render_to_string(f"{TEMPLATE}.txt", context)
    html = render_to_string(f"{TEMPLATE}.html", context)
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[u.email for u in recipients]
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send(fail_silently=False)
    except OSError:  # smtplib.SMTPException is an OSError: release the claim for the retry
        OutsideDecision.objects.filter(pk=decision_id, notified_at=now).update(notified_at=None)
        log.exception("outside decision %s: the email to compliance failed; will retry", decision_id)
        return False
    return True


def outside_decisions_notify_pending() -> int:
    """Beat: send the compliance emails that failed (or were never sent). Returns how many went out."""
    ids = list(OutsideDecision.objects.filter(notified_at__isnull=True).order_by("pk").values_list("pk", flat=True))
    return sum(1 for pk in ids if outside_decision_notify(pk))
