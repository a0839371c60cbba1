"""Email notifications: review requested, SLA reminders, decisions and push conflicts.

* ``enqueue_*`` schedule the Celery tasks with ``transaction.on_commit``: a rolled-back
  transaction sends nothing, and no SMTP call ever runs inside ``atomic``.
* ``notify_*`` / ``send_sla_reminders`` (run by the tasks) pick the recipients and deliver.
* The ``Notification`` row is the idempotency log: exactly one email per
  ``(package, kind, recipient, key)``. A delivery first ``get_or_create``s the row, then claims it
  with a conditional UPDATE (pending/failed and not leased -> leased); only the claimant sends.
  A row already ``sent`` is never sent again; a ``failed`` one is re-claimed by the task's retry.
  The model has no ``sending`` state, so the lease is ``sent_at`` set while the state is still
  ``pending``/``failed``; a lease older than ``CLAIM_LEASE`` (a worker killed mid-send) may be
  re-claimed. That window is the only at-least-once edge.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from registry_app.models import (
    Decision,
    GroupWatcher,
    ModelPackage,
    ModelPackageGroup,
    Notification,
    NotificationKind,
    NotificationPreference,
    PushOutbox,
    SignOff,
)
from registry_app.permissions import registrant_user_ids
from registry_app.review.policies import policy_for_group

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.core.mail.backends.base import BaseEmailBackend

    from registry_app.review.policy import PolicySpec

__all__ = [
    "CLAIM_LEASE",
    "DeliveryReport",
    "enqueue_conflict",
    "enqueue_decided",
    "enqueue_review_requested",
    "notify_conflict",
    "notify_decided",
    "notify_review_requested",
    "notification_preferences_set",
    "package_url",
    "profile_overview",
    "send_sla_reminders",
    "watch_group",
]

log = logging.getLogger(__name__)

PENDING_MANUAL_APPROVAL = "PendingManualApproval"
CLAIM_LEASE = dt.timedelta(minutes=15)
SUBJECT_PREFIX = "[Model governance]"
SUBJECT_LIMIT = 200
TEMPLATE_DIR = "registry_app/email"

DECISION_VERBS: dict[str, str] = {
    Decision.Kind.POLICY: "approved",
    Decision.Kind.REJECTION: "rejected",
    Decision.Kind.REVOCATION: "revoked",
    Decision.Kind.ARCHIVE: "archived",
}


# --------------------------------------------------------------------------------------------
# Enqueue (called by other services inside their transactions)
# --------------------------------------------------------------------------------------------


# ``robust``: the caller's transaction has committed (a sign-off, a decision); a broker that is down
# then must not turn the request into a 500. Django logs the failure; that email is not sent.


def enqueue_review_requested(package_id: int) -> None:
    """After commit: email the required-role holders that ``package_id`` awaits review."""
    from registry_app.tasks import notify_review_requested_task

    transaction.on_commit(lambda: notify_review_requested_task.delay(package_id), robust=True)


def enqueue_decided(decision_id: int) -> None:
    """After commit: email the package's signers and the group's watchers about a Decision."""
    from registry_app.tasks import notify_decided_task

    transaction.on_commit(lambda: notify_decided_task.delay(decision_id), robust=True)


def enqueue_conflict(push_id: UUID | str) -> None:
    """After commit: email the package's signers and the group's watchers that a push conflicted."""
    from registry_app.tasks import notify_conflict_task

    push = str(push_id)
    transaction.on_commit(lambda: notify_conflict_task.delay(push), robust=True)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


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


def policy_for(group: ModelPackageGroup) -> PolicySpec:
    """The approval policy of ``group`` (a seam the tests can replace)."""
    return policy_for_group(group)


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


def _wanting(users: Iterable[Any], kind: str) -> list[Any]:
    """Active users with an email who have not opted out of ``kind``; de-duplicated, stable order."""
    seen: set[int] = set()
    candidates = []
    for user in users:
        if user.pk in seen or not user.is_active or not (user.email or "").strip():
            continue
        seen.add(user.pk)
        candidates.append(user)
    opted_out = {
        pref.user_id
        for pref in NotificationPreference.objects.filter(user__in=[u.pk for u in candidates])
        if not pref.wants(kind)
    }
    return [u for u in candidates if u.pk not in opted_out]


def _role_holders(roles: Iterable[str]) -> list[Any]:
    """Users in the Django auth groups named like the roles."""
    names = list(roles)
    if not names:
        return []
    return list(get_user_model().objects.filter(groups__name__in=names, is_active=True).distinct().order_by("pk"))


def _signers_and_watchers(package: ModelPackage) -> list[Any]:
    user_model = get_user_model()
    signer_ids = SignOff.objects.filter(package=package).values("user_id")
    watcher_ids = GroupWatcher.objects.filter(group_id=package.group_id).values("user_id")
    return list(user_model.objects.filter(Q(pk__in=signer_ids) | Q(pk__in=watcher_ids)).distinct().order_by("pk"))


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


def _deliver(
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


def _base_context(package: ModelPackage) -> dict[str, Any]:
    return {
        "package": package,
        "group_name": package.group.name,
        "version": package.version,
        "package_url": package_url(package),
        "site_url": settings.SITE_URL,
        "profile_url": f"{settings.SITE_URL}{reverse('registry:profile')}",
    }


def _package(package_id: int) -> ModelPackage | None:
    return ModelPackage.objects.select_related("group__source").filter(pk=package_id).first()


# --------------------------------------------------------------------------------------------
# The four notifications
# --------------------------------------------------------------------------------------------


def notify_review_requested(package_id: int) -> DeliveryReport:
    """Email every holder of a required role that the package awaits manual approval.

    Does nothing if the package is gone, deleted, or no longer PendingManualApproval. Re-syncs
    and retries are idempotent (key ``""``: one email per package and recipient).
    """
    package = _package(package_id)
    if package is None or package.deleted_at is not None or package.approval_status != PENDING_MANUAL_APPROVAL:
        return DeliveryReport()
    policy = policy_for(package.group)
    registrants = set(registrant_user_ids(package))  # separation of duties: they cannot sign it
    holders = [u for u in _role_holders(policy.required_roles) if u.pk not in registrants]
    recipients = _wanting(holders, NotificationKind.REVIEW_REQUESTED)
    context = {**_base_context(package), "roles": list(policy.required_roles), "policy_name": policy.name}
    subject = f"Review requested: {package.group.name} v{package.version}"
    return _deliver(
        package=package,
        kind=NotificationKind.REVIEW_REQUESTED,
        key="",
        recipients=recipients,
        subject=subject,
        context=context,
    )


def _reminder_recipients(package: ModelPackage, policy: PolicySpec) -> list[Any]:
    """Holders of a required role still missing approvals who hold no current sign-off here.

    The registrant is left out: separation of duties stops them from signing.
    """
    current = SignOff.objects.filter(package=package, stale_at__isnull=True)
    signed_users = set(current.values_list("user_id", flat=True)) | set(registrant_user_ids(package))
    approvals: dict[str, int] = {}
    for role in current.filter(decision=SignOff.Decision.APPROVE).values_list("role", flat=True):
        approvals[role] = approvals.get(role, 0) + 1
    open_roles = [role for role, needed in policy.required_roles.items() if approvals.get(role, 0) < needed]
    return [u for u in _role_holders(open_roles) if u.pk not in signed_users]


def send_sla_reminders(now: dt.datetime | None = None) -> DeliveryReport:
    """Beat (hourly): remind reviewers of pending packages older than their policy's SLA.

    Key ``sla:<n>`` where n = whole days past the deadline, so at most one reminder per
    recipient and package per day however often beat runs.
    """
    from registry_app.review.policy import sla_state

    now = now or timezone.now()
    total = DeliveryReport()
    pending = (
        ModelPackage.objects.select_related("group__source")
        .filter(approval_status=PENDING_MANUAL_APPROVAL, deleted_at__isnull=True, group__deleted_at__isnull=True)
        .order_by("pk")
    )
    connection = get_connection(fail_silently=False)
    for package in pending.iterator(chunk_size=200):
        created = package.created_at or package.first_seen_at
        policy = policy_for(package.group)
        state, age_hours = sla_state(created, now, policy.sla_hours)
        if state != "overdue":
            continue
        days_over = int((age_hours - policy.sla_hours) // 24)
        recipients = _wanting(_reminder_recipients(package, policy), NotificationKind.SLA_REMINDER)
        context = {
            **_base_context(package),
            "sla_hours": policy.sla_hours,
            "age_hours": int(age_hours),
            "age_days": round(age_hours / 24, 1),
            "policy_name": policy.name,
        }
        report = _deliver(
            package=package,
            kind=NotificationKind.SLA_REMINDER,
            key=f"sla:{days_over}",
            recipients=recipients,
            subject=f"Review overdue: {package.group.name} v{package.version} (SLA {policy.sla_hours}h)",
            context=context,
            connection=connection,
        )
        total.sent += report.sent
        total.skipped += report.skipped
        for exc in report.errors or []:
            total.add_error(exc)
    return total


def notify_decided(decision_id: int) -> DeliveryReport:
    """Tell the package's signers and the group's watchers what was decided and by whom."""
    decision = Decision.objects.select_related("package__group__source", "decided_by").filter(pk=decision_id).first()
    if decision is None:
        return DeliveryReport()
    package = decision.package
    verb = DECISION_VERBS.get(decision.kind, one_line(decision.get_kind_display()).lower())
    actor = display_name(decision.decided_by)
    context = {
        **_base_context(package),
        "decision": decision,
        "verb": verb,
        "actor": actor,
        "target_status": decision.status,
        "description": decision.description,
    }
    return _deliver(
        package=package,
        kind=NotificationKind.DECIDED,
        key=f"decision:{decision.pk}",
        recipients=_wanting(_signers_and_watchers(package), NotificationKind.DECIDED),
        subject=f"{package.group.name} v{package.version} {verb} by {actor}",
        context=context,
    )


def _conflict_found(push: PushOutbox) -> str:
    """The registry status found instead of the expected one, from whichever key the push recorded."""
    detail = push.conflict_detail if isinstance(push.conflict_detail, dict) else {}
    for key in ("found_status", "actual_status", "current_status", "registry_status", "status", "ModelApprovalStatus"):
        value = detail.get(key)
        if value:
            return one_line(str(value), 64)
    return push.package.approval_status or "unknown"


def notify_conflict(push_id: UUID | str) -> DeliveryReport:
    """Tell signers and watchers that the registry changed outside the dashboard and the push was not applied."""
    push = PushOutbox.objects.select_related("package__group__source", "decision").filter(pk=str(push_id)).first()
    if push is None or push.state != PushOutbox.State.CONFLICT:
        return DeliveryReport()
    package = push.package
    detail = push.conflict_detail if isinstance(push.conflict_detail, dict) else {}
    context = {
        **_base_context(package),
        "push": push,
        "expected_status": push.expected_status,
        "found_status": _conflict_found(push),
        "target_status": push.target_status,
        "detail_items": sorted((str(k), one_line(str(v), 500)) for k, v in detail.items()),
        "acting_username": push.acting_username,
    }
    return _deliver(
        package=package,
        kind=NotificationKind.CONFLICT,
        key=f"push:{push.pk}",
        recipients=_wanting(_signers_and_watchers(package), NotificationKind.CONFLICT),
        subject=f"Push NOT applied: {package.group.name} v{package.version} was changed outside the dashboard",
        context=context,
    )


# --------------------------------------------------------------------------------------------
# Profile: preferences and watched groups
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindChoice:
    value: str
    label: str
    wanted: bool


@dataclass(frozen=True)
class ProfileOverview:
    kinds: list[KindChoice]
    watched: list[ModelPackageGroup]
    roles: list[str]
    has_email: bool


def profile_overview(user: AbstractBaseUser) -> ProfileOverview:
    """What the profile page shows: each kind with whether it is wanted, watched groups, roles."""
    pref = NotificationPreference.objects.filter(user=user).first()
    kinds = [
        KindChoice(value, str(label), pref is None or pref.wants(value)) for value, label in NotificationKind.choices
    ]
    watched = list(
        ModelPackageGroup.objects.filter(watchers__user=user).select_related("source").order_by("name", "source__name")
    )
    roles = sorted(user.groups.values_list("name", flat=True)) if hasattr(user, "groups") else []
    return ProfileOverview(kinds=kinds, watched=watched, roles=roles, has_email=bool((user.email or "").strip()))


def notification_preferences_set(user: AbstractBaseUser, *, opted_out: Iterable[str]) -> NotificationPreference:
    """Store the kinds ``user`` does not want (unknown values are dropped). One UPDATE or INSERT."""
    valid = set(NotificationKind.values)
    wanted_out = sorted({kind for kind in opted_out if kind in valid})
    pref, _ = NotificationPreference.objects.update_or_create(user=user, defaults={"opted_out": wanted_out})
    return pref


def watch_group(user: AbstractBaseUser, group: ModelPackageGroup, *, watch: bool) -> bool:
    """Start or stop watching ``group``; True when something changed. Safe to repeat (unique row)."""
    if watch:
        _, created = GroupWatcher.objects.get_or_create(user=user, group=group)
        return created
    deleted, _ = GroupWatcher.objects.filter(user=user, group=group).delete()
    return deleted > 0
