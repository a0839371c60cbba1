"""Findings' e-mails: the owner hears of a new finding (same transaction as the finding), and once more
a few days before its due date (idempotent via the notification key)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from registry_app.models import Finding, Notification, NotificationKind
from registry_app.models.signoffs import EMAIL_KINDS
from registry_app.notifications.finding_mails import send_finding_reminders
from registry_app.notifications.sender import notifications_send_due
from registry_app.review.findings import FindingNotAllowed, finding_raise
from registry_app.tasks import send_sla_reminders_task

from .conftest import SITE, make_user

pytestmark = pytest.mark.django_db

KIND = NotificationKind.FINDING_RAISED


def _raise(package: Any, raiser: Any, owner: Any, days: int = 30, **extra: Any) -> Finding:
    return finding_raise(
        user=raiser,
        package_id=package.pk,
        title="PSI drift <on> age",
        severity="high",
        owner_id=owner.pk,
        due_date=timezone.localdate() + dt.timedelta(days=days),
        **extra,
    )


def test_finding_raised_is_an_email_kind() -> None:
    assert KIND in EMAIL_KINDS


def test_the_owner_is_emailed_on_creation(
    mailoutbox: list[Any], reviewers: dict[str, Any], package: Any, django_capture_on_commit_callbacks: Any
) -> None:
    owner = make_user("olga", email="olga@example.com")
    with django_capture_on_commit_callbacks() as callbacks:
        finding = _raise(package, reviewers["fairness"], owner)
    row = Notification.objects.get(kind=KIND)
    assert row.recipient == owner and row.key == f"finding:{finding.pk}" and row.package_id == package.pk
    assert len(callbacks) >= 1  # the sender is kicked after commit
    notifications_send_due()
    [message] = mailoutbox
    assert message.to == ["olga@example.com"]
    assert message.subject == "[Model governance] Finding raised: credit-risk v3"
    assert f"finding {finding.ref}" in message.body and "PSI drift <on> age" in message.body
    assert "PSI drift &lt;on&gt; age" in message.alternatives[0][0]  # escaped in HTML
    assert f"{SITE}/packages/credit-risk/3/" in message.body


def test_a_refused_finding_writes_no_email(reviewers: dict[str, Any], package: Any) -> None:
    owner = make_user("olga", email="olga@example.com")
    viewer = make_user("vic", "viewer")
    with pytest.raises(FindingNotAllowed):
        _raise(package, viewer, owner)
    assert not Notification.objects.filter(kind=KIND).exists()


def test_a_reminder_before_the_due_date_once(mailoutbox: list[Any], reviewers: dict[str, Any], package: Any) -> None:
    owner = make_user("olga", email="olga@example.com")
    soon = _raise(package, reviewers["fairness"], owner, days=2)
    _raise(package, reviewers["fairness"], owner, days=20)  # not yet
    Notification.objects.all().delete()  # leave the creation e-mails aside
    assert send_finding_reminders() == 1
    send_finding_reminders()  # idempotent: same finding, same due date -> the same row
    row = Notification.objects.get(kind=KIND)
    assert row.key == f"finding:{soon.pk}:due:{soon.due_date.isoformat()}"
    notifications_send_due()
    [message] = mailoutbox
    assert message.subject == f"[Model governance] Finding due {soon.due_date.isoformat()}: credit-risk v3"
    assert "is due on" in message.body


def test_no_reminder_for_closed_or_overdue_findings(reviewers: dict[str, Any], package: Any) -> None:
    owner = make_user("olga", email="olga@example.com")
    closed = _raise(package, reviewers["fairness"], owner, days=1)
    Finding.objects.filter(pk=closed.pk).update(state=Finding.State.CLOSED)
    late = _raise(package, reviewers["fairness"], owner, days=1)
    Finding.objects.filter(pk=late.pk).update(due_date=timezone.localdate() - dt.timedelta(days=1))
    Notification.objects.all().delete()
    assert send_finding_reminders() == 0


def test_the_hourly_reminder_task_includes_findings(reviewers: dict[str, Any], package: Any) -> None:
    owner = make_user("olga", email="olga@example.com")
    _raise(package, reviewers["fairness"], owner, days=1)
    Notification.objects.all().delete()
    send_sla_reminders_task()
    assert Notification.objects.filter(kind=KIND, key__contains=":due:").count() == 1
