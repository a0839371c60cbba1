"""E-mails to staff when the evidence itself is in doubt: the audit chain failed its check against
the anchor, or CloudTrail files or digests failed validation.

Each alert claims its rows first (a conditional UPDATE of ``notified_at`` / ``alerted_at``), sends
one message to every active staff member with an address, outside any transaction, and releases
the claim when SMTP fails, so the next run (the daily verification, the next ingest) sends it again.
Subjects and the mail backend are the notifications' own (``notifications.delivery``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from registry_app.models import AuditVerification, TrailDigest, TrailLogFile
from registry_app.notifications.delivery import SUBJECT_PREFIX, one_line

__all__ = ["alert_evidence_failures", "alert_verification", "send_staff_alert"]

log = logging.getLogger(__name__)

TEMPLATES = "registry_app/audit/email"
MAX_LISTED = 200


def _staff() -> list[Any]:
    return list(get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="").order_by("pk"))


def send_staff_alert(subject: str, template: str, context: dict[str, Any]) -> bool:
    """One e-mail to all active staff; False when nobody can receive it or SMTP failed."""
    recipients = _staff()
    if not recipients:
        log.error("audit alert %r: no active staff member has an e-mail address", subject)
        return False
    context = {**context, "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=one_line(f"{SUBJECT_PREFIX} {subject}"),
        body=render_to_string(f"{TEMPLATES}/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email for user in recipients],
    )
    message.attach_alternative(render_to_string(f"{TEMPLATES}/{template}.html", context), "text/html")
    try:
        message.send(fail_silently=False)
    except OSError:  # smtplib.SMTPException is an OSError
        log.exception("audit alert %r: sending failed; retried by the next run", subject)
        return False
    return True


def alert_verification(verification_id: int) -> bool:
    """E-mail staff about one failed verification, once."""
    now = timezone.now()
    claimed = AuditVerification.objects.filter(pk=verification_id, ok=False, notified_at__isnull=True).update(
        notified_at=now
    )
    if not claimed:
        return False
    verification = AuditVerification.objects.get(pk=verification_id)
    sent = send_staff_alert(
        f"Audit log check FAILED: {verification.get_problem_display()}",
        "audit_verification_failed",
        {"verification": verification, "sync_url": settings.SITE_URL + reverse("registry:sync_status")},
    )
    if not sent:
        AuditVerification.objects.filter(pk=verification_id, notified_at=now).update(notified_at=None)
    return sent


def alert_evidence_failures() -> int:
    """E-mail staff about CloudTrail files and digests that failed validation since the last alert."""
    now = timezone.now()
    file_ids = list(
        TrailLogFile.objects.filter(state=TrailLogFile.State.FAILED, alerted_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:MAX_LISTED]
    )
    broken = Q(state=TrailDigest.State.FAILED) | Q(chain=TrailDigest.Chain.BROKEN)
    digest_ids = list(
        TrailDigest.objects.filter(broken, alerted_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:MAX_LISTED]
    )
    if not file_ids and not digest_ids:
        return 0
    TrailLogFile.objects.filter(pk__in=file_ids, alerted_at__isnull=True).update(alerted_at=now)
    TrailDigest.objects.filter(pk__in=digest_ids, alerted_at__isnull=True).update(alerted_at=now)
    files = list(TrailLogFile.objects.filter(pk__in=file_ids, alerted_at=now).order_by("delivered_at", "pk"))
    digests = list(TrailDigest.objects.filter(pk__in=digest_ids, alerted_at=now).order_by("digest_end", "pk"))
    if not files and not digests:
        return 0
    sent = send_staff_alert(
        f"CloudTrail evidence failed validation ({len(files)} log file(s), {len(digests)} digest(s))",
        "cloudtrail_validation_failed",
        {"files": files, "digests": digests, "search_url": settings.SITE_URL + reverse("registry:audit_search")},
    )
    if not sent:
        TrailLogFile.objects.filter(pk__in=file_ids, alerted_at=now).update(alerted_at=None)
        TrailDigest.objects.filter(pk__in=digest_ids, alerted_at=now).update(alerted_at=None)
        return 0
    return len(files) + len(digests)
