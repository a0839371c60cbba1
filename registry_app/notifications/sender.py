"""Sending the notification outbox: claim what may go per person or endpoint, send one message, record it.

* ``notifications_send_due`` (a worker: after each commit that wrote rows due now, and the beat sweep every
  ``NOTIFY_SWEEP_SECONDS``) finds up to ``TARGETS_PER_ROUND`` targets (a person, or a webhook endpoint) with a
  row due, and claims their rows with one conditional UPDATE -> ``sending`` under a fresh claim token: the rows due,
  plus the pending ones collected meanwhile that do not wait for the daily digest (a batch goes out whole,
  as soon as its oldest row is due), plus ``sending`` rows whose lease (``NOTIFY_CLAIM_LEASE_SECONDS``)
  expired because their worker died. Only the claimant sends; two workers never claim the same row; and
  right before each SMTP or HTTP call the claim's age is checked: past half the lease, the rows are given
  back unsent, so no row can be re-claimed while its worker may still send it.
* One message per target for e-mail, Slack and Teams (a digest when it tells several rows), one signed
  POST per row for generic webhooks. No transaction is open during an SMTP or HTTP call.
* Each row ends ``sent``; or goes back to ``pending`` after a backoff (``NOTIFY_RETRY_BASE_SECONDS`` doubled
  per attempt up to ``NOTIFY_RETRY_MAX_SECONDS``, jittered) until ``NOTIFY_MAX_ATTEMPTS``, then ``failed``
  (shown on /sync/ and in /metrics; staff may retry); ``failed`` at once when refused for good (the SMTP
  server refuses the recipient with a 5xx, an endpoint answers 4xx or lacks its variable); ``cancelled``
  when no longer relevant (the package was decided before its review request went, the person opted out
  or has no address any more, the endpoint was disabled).
* At most one duplicate per row, and only when a worker dies (or stalls for more than half a lease inside
  one SMTP or HTTP call) after the server accepted a message and before it recorded ``sent``: the lease
  expires and another worker sends it again.
  Messages name their rows (``X-Governance-Notification``; ``X-Governance-Delivery`` for webhooks).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import random
import smtplib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.mail import get_connection
from django.db.models import Exists, F, Min, OuterRef, Q
from django.utils import timezone

from registry_app.models import ModelPackage, Notification, NotificationKind, NotificationPreference, WebhookEndpoint
from registry_app.models.registry import ApprovalStatus
from registry_app.notifications import webhooks
from registry_app.notifications.delivery import email_message, package_urls, queue_url
from registry_app.notifications.items import Item, item_for
from registry_app.notifications.webhook_formats import generic_payload, slack_message, teams_message

__all__ = ["SendReport", "notifications_send_due", "retry_delay"]

log = logging.getLogger(__name__)

State = Notification.State
TARGETS_PER_ROUND = 20  # claimed together: one UPDATE and one SELECT for up to this many messages
PENDING = ApprovalStatus.PENDING
PENDING_ONLY = frozenset({NotificationKind.REVIEW_REQUESTED, NotificationKind.SLA_REMINDER})


@dataclass
class SendReport:
    messages: int = 0  # e-mails and HTTP requests accepted
    sent: int = 0  # rows told
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    released: int = 0  # given back unsent: the claim was too old to send under (see _in_time)
    errors: list[str] = field(default_factory=list)
    send_before: float = math.inf  # monotonic time after which this round's claim may not be sent under
    urls: dict[int, str] = field(default_factory=dict, repr=False)  # package links, computed once per run
    prefs: dict[int, NotificationPreference | None] = field(default_factory=dict, repr=False)  # per round

    def error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text[:300])


def _monotonic() -> float:
    return time.monotonic()


def retry_delay(attempts: int) -> dt.timedelta:
    """Backoff before attempt ``attempts + 1``: base × 2^(attempts-1), capped, ±20 % jitter."""
    base = settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(0, min(attempts - 1, 20))
    seconds = min(float(settings.NOTIFY_RETRY_MAX_SECONDS), float(base))
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not a secret


# --------------------------------------------------------------------------------------------- claiming


def _lease_start(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(seconds=settings.NOTIFY_CLAIM_LEASE_SECONDS)


def _due(now: dt.datetime) -> Q:
    return Q(state=State.PENDING, deliver_after__lte=now) | Q(state=State.SENDING, claimed_at__lt=_lease_start(now))


def _due_targets(now: dt.datetime) -> list[tuple[int | None, int | None]]:
    """(recipient_id, webhook_id) of up to TARGETS_PER_ROUND targets with a row due (the longest-waiting)."""
    rows = (
        Notification.objects.filter(_due(now))
        .values("recipient_id", "webhook_id")
        .annotate(first=Min("deliver_after"))
        .order_by("first")[:TARGETS_PER_ROUND]
    )
    targets = [(row["recipient_id"], row["webhook_id"]) for row in rows]
    random.shuffle(targets)  # concurrent senders start on different targets instead of racing for the same
    return targets


Target = tuple[int | None, int | None]  # (recipient_id, webhook_id)


def _claim(targets: Sequence[Target], now: dt.datetime) -> dict[Target, list[Notification]]:
    """Claim the rows of ``targets`` that may go now: one conditional UPDATE, one SELECT. Targets another
    worker was first to are absent from the result."""
    users = [recipient for recipient, _ in targets if recipient is not None]
    hooks = [webhook for _, webhook in targets if webhook is not None]
    mine = Q(recipient_id__in=users) | Q(webhook_id__in=hooks)
    collected = Q(state=State.PENDING, digest=False, attempts=0)  # a batch goes whole, not a retry's backoff
    # Only while one of the target's rows is due: a worker that lost the race must not send the rest early.
    same_target = Q(recipient_id=OuterRef("recipient_id")) | Q(webhook_id=OuterRef("webhook_id"))
    still_due = Exists(Notification.objects.filter(same_target).filter(_due(now)))
    token = uuid.uuid4().hex
    claimed = (
        Notification.objects.filter(mine)
        .filter(_due(now) | collected)
        .filter(still_due)
        .update(state=State.SENDING, claim=token, claimed_at=now, attempts=F("attempts") + 1)
    )
    batches: dict[Target, list[Notification]] = {}
    if claimed:
        rows = (
            Notification.objects.filter(claim=token, state=State.SENDING)
            .select_related("package__group__source", "recipient", "webhook")
            .order_by("created_at", "pk")
        )
        for row in rows:
            batches.setdefault((row.recipient_id, row.webhook_id), []).append(row)
    return batches


def _release(rows: Sequence[Notification]) -> int:
    """Give claimed rows back, unsent and uncounted, for the next run."""
    if not rows:
        return 0
    return Notification.objects.filter(pk__in=[r.pk for r in rows], claim=rows[0].claim, state=State.SENDING).update(
        state=State.PENDING, claim="", attempts=F("attempts") - 1
    )


def _finish(rows: Sequence[Notification], state: str, *, error: str = "", deliver_after: Any = None) -> int:
    """Record the outcome of claimed rows, only while they are still this claim's (a conditional UPDATE)."""
    if not rows:
        return 0
    now = timezone.now()
    changes: dict[str, Any] = {"state": state, "last_error": error[:2000]}
    if state == State.SENT:
        changes["sent_at"] = now
    if deliver_after is not None:
        changes["deliver_after"] = deliver_after
    return Notification.objects.filter(pk__in=[r.pk for r in rows], claim=rows[0].claim, state=State.SENDING).update(
        **changes
    )


def _failed_attempt(rows: Sequence[Notification], error: str, *, permanent: bool, report: SendReport) -> None:
    attempts = max(row.attempts for row in rows)
    if permanent or attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        report.failed += _finish(rows, State.FAILED, error=error)
    else:
        report.retrying += _finish(
            rows, State.PENDING, error=error, deliver_after=timezone.now() + retry_delay(attempts)
        )
    report.error(error)


def _in_time(rows: Sequence[Notification], report: SendReport) -> bool:
    """Checked right before each SMTP or HTTP call: once half the lease has passed since the claim, the
    rows are given back instead of sent, so no row is ever re-claimable by another worker while this one
    may still send it (a send itself lasts far less than half a lease: EMAIL_TIMEOUT, webhook timeout)."""
    if _monotonic() <= report.send_before:
        return True
    report.released += _release(rows)
    return False


# --------------------------------------------------------------------------------------------- relevance


def _still_relevant(rows: Sequence[Notification], report: SendReport) -> list[Notification]:
    """Cancel review requests and reminders about packages no longer pending (or deleted)."""
    keep, gone = [], []
    for row in rows:
        package = row.package
        if row.kind in PENDING_ONLY and (package.deleted_at is not None or package.approval_status != PENDING):
            gone.append(row)
        else:
            keep.append(row)
    report.cancelled += _finish(gone, State.CANCELLED, error="Not sent: the package is no longer pending review.")
    return keep


def _load_prefs(targets: Sequence[tuple[int | None, int | None]], report: SendReport) -> None:
    """The round's people's preferences, in one query (read when their turn comes: as they are now)."""
    user_ids = [recipient for recipient, _ in targets if recipient is not None]
    report.prefs = dict.fromkeys(user_ids)
    report.prefs.update({p.user_id: p for p in NotificationPreference.objects.filter(user_id__in=user_ids)})


def _wanted_by(user: Any, rows: Sequence[Notification], report: SendReport) -> list[Notification]:
    """Cancel what the person no longer wants or cannot receive."""
    if not user.is_active or not (user.email or "").strip():
        report.cancelled += _finish(rows, State.CANCELLED, error="Not sent: no active account with an e-mail address.")
        return []
    if user.pk in report.prefs:
        pref = report.prefs[user.pk]
    else:
        pref = NotificationPreference.objects.filter(user=user).first()
    if pref is None:
        return list(rows)
    unwanted = [row for row in rows if not pref.wants(row.kind)]
    report.cancelled += _finish(unwanted, State.CANCELLED, error="Not sent: the recipient opted out of this kind.")
    return [row for row in rows if pref.wants(row.kind)]


def _items(rows: Sequence[Notification], urls: dict[int, str]) -> list[Item]:
    missing = {row.package_id: row.package for row in rows if row.package_id not in urls}
    if missing:
        urls.update(package_urls(missing.values()))
    return [
        item_for(
            row_id=row.pk,
            kind=row.kind,
            group=row.package.group.name,
            version=row.package.version,
            url=urls[row.package_id],
            facts=row.payload,
        )
        for row in rows
    ]


# --------------------------------------------------------------------------------------------- channels


class _Mailer:
    """One SMTP connection per run, opened when first needed, reopened after an error."""

    def __init__(self) -> None:
        self.connection: Any = None

    def send(self, message: Any) -> None:
        if self.connection is None:
            self.connection = get_connection(fail_silently=False)
            self.connection.open()
        message.connection = self.connection
        message.send(fail_silently=False)

    def reset(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.connection.close()
        self.connection = None


def _refused_for_good(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(int(code) >= 500 for code, _ in exc.recipients.values())
    return False


def _send_email(rows: list[Notification], mailer: _Mailer, report: SendReport) -> None:
    user = rows[0].recipient
    rows = _wanted_by(user, _still_relevant(rows, report), report)
    if not rows:
        return
    items = _items(rows, report.urls)
    packages = {row.package_id: row.package for row in rows}
    message = email_message(user, items, packages, package_ids={row.pk: row.package_id for row in rows})
    if not _in_time(rows, report):
        return
    try:
        mailer.send(message)
    except OSError as exc:  # smtplib.SMTPException is an OSError
        mailer.reset()  # a broken connection must not fail the next recipients
        _failed_attempt(rows, f"{type(exc).__name__}: {exc}", permanent=_refused_for_good(exc), report=report)
        log.warning("notification e-mail to user %s (%d rows) failed: %s", user.pk, len(rows), exc)
        return
    report.messages += 1
    report.sent += _finish(rows, State.SENT)


def _send_chat(rows: list[Notification], hook: WebhookEndpoint, report: SendReport) -> None:
    rows = _still_relevant(rows, report)
    if not rows:
        return
    items = _items(rows, report.urls)
    build = slack_message if hook.format == WebhookEndpoint.Format.SLACK else teams_message
    message = build(items, queue_url=queue_url())
    if not _in_time(rows, report):
        return
    try:
        webhooks.post_json(webhooks.endpoint_url(hook), message)
    except webhooks.WebhookError as exc:
        _failed_attempt(rows, str(exc), permanent=exc.permanent, report=report)
        log.warning("webhook %s (%d rows) failed: %s", hook.name, len(rows), exc)
        return
    report.messages += 1
    report.sent += _finish(rows, State.SENT)


def _package_facts(package: ModelPackage) -> dict[str, Any]:
    return {
        "group": package.group.name,
        "version": package.version,
        "arn": package.arn,
        "source": package.group.source.name,
        "approval_status": package.approval_status,
    }


def _send_generic(rows: list[Notification], hook: WebhookEndpoint, report: SendReport) -> None:
    rows = _still_relevant(rows, report)
    if not rows:
        return
    try:
        url, secret = webhooks.endpoint_url(hook), webhooks.endpoint_secret(hook)
    except webhooks.WebhookError as exc:
        _failed_attempt(rows, str(exc), permanent=True, report=report)
        return
    for n, (row, item) in enumerate(zip(rows, _items(rows, report.urls), strict=True)):
        payload = generic_payload(
            item,
            delivery_id=row.pk,
            occurred_at=row.created_at.isoformat(),
            attempt=row.attempts,
            package=_package_facts(row.package),
        )
        body = webhooks.payload_bytes(payload)
        headers = webhooks.signed_headers(secret, body, delivery_id=row.pk, event=item.event)
        if not _in_time(rows[n:], report):
            return
        try:
            webhooks.post_bytes(url, body, headers=headers)
        except webhooks.WebhookError as exc:
            if exc.permanent:
                _failed_attempt([row], str(exc), permanent=True, report=report)
                continue
            # The endpoint is down or slow: the rest waits the same backoff instead of a timeout each.
            _failed_attempt(rows[n:], str(exc), permanent=False, report=report)
            log.warning("webhook %s failed, %d rows to retry: %s", hook.name, len(rows) - n, exc)
            return
        report.messages += 1
        report.sent += _finish([row], State.SENT)


def _deliver(rows: list[Notification], mailer: _Mailer, report: SendReport) -> None:
    try:
        if rows[0].recipient_id is not None:
            _send_email(rows, mailer, report)
            return
        hook = rows[0].webhook
        if hook is None or not hook.enabled:
            report.cancelled += _finish(rows, State.CANCELLED, error="Not sent: the webhook endpoint is disabled.")
        elif hook.format == WebhookEndpoint.Format.GENERIC:
            _send_generic(rows, hook, report)
        else:
            _send_chat(rows, hook, report)
    except Exception as exc:  # a bug rendering one message must not stop everyone else's
        log.exception("notification rows %s could not be sent", [row.pk for row in rows][:20])
        _failed_attempt(rows, f"Unexpected error: {exc!r}", permanent=True, report=report)


# --------------------------------------------------------------------------------------------- the run


def _send_round(batches: list[list[Notification]], mailer: _Mailer, report: SendReport, deadline: float | None) -> None:
    """One message per batch; past the run's deadline the rest is given back for the next run."""
    for n, rows in enumerate(batches):
        if deadline is not None and _monotonic() >= deadline:
            for rest in batches[n:]:
                report.released += _release(rest)
            return
        _deliver(rows, mailer, report)


def notifications_send_due(*, now: dt.datetime | None = None, max_seconds: float | None = None) -> SendReport:
    """Send everything due (see the module docstring), until nothing is left or ``max_seconds`` passed.

    Each claim and each outcome is its own statement; no transaction is held across SMTP or HTTP.
    ``now`` (tests) fixes the clock for what is due.
    """
    report = SendReport()
    deadline = _monotonic() + max_seconds if max_seconds is not None else None
    mailer = _Mailer()
    try:
        while deadline is None or _monotonic() < deadline:
            # Measured before the claim (whose claimed_at is ``moment``), so the margin only errs on the safe side.
            report.send_before = _monotonic() + settings.NOTIFY_CLAIM_LEASE_SECONDS / 2
            moment = now or timezone.now()
            targets = _due_targets(moment)
            _load_prefs(targets, report)
            batches = list(_claim(targets, moment).values())
            if not batches:
                break  # nothing due, or everything due was claimed by other workers
            _send_round(batches, mailer, report, deadline)
    finally:
        mailer.reset()
    return report
