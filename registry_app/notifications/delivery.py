"""Delivering one notification to its recipients, exactly once each: the ``Notification`` rows and SMTP.

* The ``Notification`` row is the idempotency log: exactly one email per
  ``(package, kind, recipient, key)``. A delivery first ``get_or_create``s the row, then claims it
  with a conditional UPDATE (pending/failed and not leased -> leased); only the claimant sends.
  A row already ``sent`` is never sent again; a ``failed`` one is re-claimed by the task's retry.
  The model has no ``sending`` state, so the lease is ``sent_at`` set while the state is still
  ``pending``/``failed``; a lease older than ``CLAIM_LEASE`` (a worker killed mid-send) may be
  re-claimed. That window is the only at-least-once edge.
* No transaction is held across an SMTP call. Messages are rendered from ``registry_app/email/<kind>``
  (plain text and HTML), with registry text made safe for headers (``one_line``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from registry_app.models import ModelPackage, ModelPackageGroup, Notification

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.core.mail.backends.base import BaseEmailBackend

log = logging.getLogger(__name__)

CLAIM_LEASE = dt.timedelta(minutes=15)
SUBJECT_PREFIX = "[Model governance]"
SUBJECT_LIMIT = 200
TEMPLATE_DIR = "registry_app/email"


@dataclass
class DeliveryReport:
    """What one run did. ``errors`` holds the SMTP/OS errors of rows left ``failed``."""

    sent: int = 0
    skipped: int = 0
    errors: list[Exception] | None = None

    def add_error(self, exc: Exception) -> None:
        self.errors = [*(self.errors or []), exc]

    def raise_first_error(self) -> None:
        """Re-raise so the task's autoretry runs again (sent rows are skipped next time)."""
        if self.errors:
            raise self.errors[0]


def package_url(package: ModelPackage) -> str:
    """Absolute link to the package page (``login_required`` sends anonymous users through login).

    ``?source=`` is added only when a group of the same name exists in another source.
    """
    group = package.group
    path = reverse("registry:package_detail", args=[group.name, package.version])
    namesakes = ModelPackageGroup.objects.filter(name=group.name).exclude(pk=group.pk)
    if namesakes.exists():
        path += "?" + urlencode({"source": group.source.name})
    return f"{settings.SITE_URL}{path}"


def one_line(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """Registry text made safe for a header: no CR/LF or other control characters, bounded length."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in str(text))
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


def display_name(user: AbstractBaseUser | None) -> str:
    if user is None:
        return "the governance policy"
    full = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    username = user.get_username()
    return f"{full} ({username})" if full and full != username else username


def _claim(note: Notification, now: dt.datetime) -> bool:
    """Conditional UPDATE: True only for the single caller that may send this row now."""
    claimable = Q(sent_at__isnull=True) | Q(sent_at__lt=now - CLAIM_LEASE)
    return (
        Notification.objects.filter(pk=note.pk, state__in=[Notification.State.PENDING, Notification.State.FAILED])
        .filter(claimable)
        .update(sent_at=now, attempts=F("attempts") + 1)
        == 1
    )


def _render(kind: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """(plain text, HTML). HTML autoescapes registry text; the .txt templates turn autoescape off."""
    text = render_to_string(f"{TEMPLATE_DIR}/{kind}.txt", dict(context))
    html = render_to_string(f"{TEMPLATE_DIR}/{kind}.html", dict(context))
    return text, html


def deliver(
    *,
    package: ModelPackage,
    kind: str,
    key: str,
    recipients: Iterable[Any],
    subject: str,
    context: Mapping[str, Any],
    connection: BaseEmailBackend | None = None,
) -> DeliveryReport:
    """Send one email per recipient unless the (package, kind, recipient, key) row is already sent.

    No transaction is held across the SMTP call; each row is claimed and finished on its own.
    One SMTP connection is opened lazily (only if something is to be sent) and reused.
    """
    report = DeliveryReport()
    subject = one_line(f"{SUBJECT_PREFIX} {subject}")
    connection = connection or get_connection(fail_silently=False)
    opened_here = False
    try:
        for user in recipients:
            note, _ = Notification.objects.get_or_create(package=package, kind=kind, recipient=user, key=key)
            if note.state == Notification.State.SENT or not _claim(note, timezone.now()):
                report.skipped += 1
                continue
            try:
                opened_here = bool(connection.open()) or opened_here
                _send(connection, subject, kind, user, context)
            except OSError as exc:  # smtplib.SMTPException is an OSError: recorded, retried by the task
                _finish(note, error=exc)
                log.warning("notification %s to user %s about %s failed: %s", kind, user.pk, package.pk, exc)
                report.add_error(exc)
                _close_quietly(connection)  # a broken connection must not fail the remaining recipients
                opened_here = False
                continue
            except Exception as exc:
                _finish(note, error=exc)
                raise
            _finish(note)
            report.sent += 1
    finally:
        if opened_here:
            _close_quietly(connection)
    return report


def _send(connection: BaseEmailBackend, subject: str, kind: str, user: Any, context: Mapping[str, Any]) -> None:
    text, html = _render(kind, {**context, "recipient": user, "recipient_name": display_name(user)})
    message = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[user.email], connection=connection
    )
    message.attach_alternative(html, "text/html")
    message.send(fail_silently=False)


def _finish(note: Notification, *, error: BaseException | None = None) -> None:
    if error is None:
        Notification.objects.filter(pk=note.pk).update(
            state=Notification.State.SENT, sent_at=timezone.now(), last_error=""
        )
    else:
        Notification.objects.filter(pk=note.pk).update(
            state=Notification.State.FAILED, sent_at=None, last_error=f"{type(error).__name__}: {error}"[:2000]
        )


def _close_quietly(connection: BaseEmailBackend) -> None:
    with contextlib.suppress(OSError):
        connection.close()


def base_context(package: ModelPackage) -> dict[str, Any]:
    return {
        "package": package,
        "group_name": package.group.name,
        "version": package.version,
        "package_url": package_url(package),
        "site_url": settings.SITE_URL,
        "profile_url": f"{settings.SITE_URL}{reverse('registry:profile')}",
    }
