"""SLA reminders: overdue pending packages, reviewers who have not signed, one per day at most."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from registry_app.models import Notification, NotificationKind, NotificationPreference, SignOff
from registry_app.models.registry import ApprovalStatus
from registry_app.notifications import emails as notifications
from registry_app.notifications.sender import notifications_send_due
from registry_app.review.policy import PolicySpec
from registry_app.tasks import send_sla_reminders_task
from tests.factories import ModelPackageFactory

from .conftest import SITE, make_user

pytestmark = pytest.mark.django_db

SLA = 72  # DEFAULT_POLICY


def _age(package: Any, hours: float) -> None:
    """'Freeze time' by moving the package's creation into the past."""
    package.created_at = timezone.now() - dt.timedelta(hours=hours)
    package.save(update_fields=["created_at"])


def _sign(package: Any, user: Any, role: str, decision: str = SignOff.Decision.APPROVE, **extra: Any) -> SignOff:
    return SignOff.objects.create(package=package, user=user, role=role, decision=decision, fingerprint="f", **extra)


def test_reminds_required_role_holders_who_have_not_signed(
    mailoutbox: list[Any], reviewers: dict[str, Any], outsider: Any, package
) -> None:
    _age(package, SLA + 1)
    _sign(package, reviewers["ml-lead"], "ml-lead")

    assert send_sla_reminders_task() == 2

    assert sorted(m.to[0] for m in mailoutbox) == ["connie@example.com", "farid@example.com"]
    message = mailoutbox[0]
    assert message.subject == "[Model governance] Review overdue: credit-risk v3 (SLA 72h)"
    assert f"{SITE}/packages/credit-risk/3/" in message.body
    assert "past the 72-hour review SLA" in message.body
    assert "72-hour" in message.alternatives[0][0]


def test_not_before_the_sla(mailoutbox: list[Any], reviewers: dict[str, Any], package) -> None:
    _age(package, SLA - 0.5)
    assert send_sla_reminders_task() == 0
    assert mailoutbox == []


def test_only_pending_live_packages(mailoutbox: list[Any], reviewers: dict[str, Any]) -> None:
    old = timezone.now() - dt.timedelta(days=30)
    ModelPackageFactory(approval_status=ApprovalStatus.APPROVED, created_at=old)
    ModelPackageFactory(approval_status=ApprovalStatus.REJECTED, created_at=old)
    ModelPackageFactory(approval_status=ApprovalStatus.PENDING, created_at=old, deleted_at=timezone.now())
    assert send_sla_reminders_task() == 0


def test_hourly_runs_send_one_reminder_per_day(mailoutbox: list[Any], reviewers: dict[str, Any], package) -> None:
    _age(package, SLA + 1)
    now = timezone.now()
    for hour in range(23):  # beat runs hourly through the first overdue day
        notifications.send_sla_reminders(now + dt.timedelta(hours=hour))
        notifications_send_due(now=now + dt.timedelta(hours=hour))
    assert len(mailoutbox) == 3

    notifications.send_sla_reminders(now + dt.timedelta(hours=24))  # the next day
    notifications_send_due(now=now + dt.timedelta(hours=24))
    assert len(mailoutbox) == 6
    keys = set(Notification.objects.filter(kind=NotificationKind.SLA_REMINDER).values_list("key", flat=True))
    assert keys == {"sla:0", "sla:1"}


def test_stale_signoff_counts_as_not_signed_and_complete_roles_are_skipped(
    mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    _age(package, SLA + 5)
    _sign(package, reviewers["fairness"], "fairness", stale_at=timezone.now())  # must redo
    other_lead = make_user("lars", "ml-lead")
    _sign(package, other_lead, "ml-lead")  # ml-lead needs 1 approval: role complete
    send_sla_reminders_task()
    assert sorted(m.to[0] for m in mailoutbox) == ["connie@example.com", "farid@example.com"]


def test_policy_sla_and_opt_out(
    mailoutbox: list[Any], reviewers: dict[str, Any], package, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications, "policy_for", lambda group: PolicySpec(name="fast", sla_hours=4))
    NotificationPreference.objects.create(user=reviewers["fairness"], opted_out=[NotificationKind.SLA_REMINDER])
    _age(package, 5)
    send_sla_reminders_task()
    assert sorted(m.to[0] for m in mailoutbox) == ["connie@example.com", "lena@example.com"]
    assert "SLA 4h" in mailoutbox[0].subject


def test_beat_schedules_the_reminders_hourly() -> None:
    from governance.celery import app

    app.finalize()
    entry = app.conf.beat_schedule["sla-reminders"]
    assert entry["task"] == "registry_app.tasks.send_sla_reminders"
    assert entry["task"] in app.tasks
    assert entry["schedule"].hour == set(range(24)) and len(entry["schedule"].minute) == 1


def test_beat_sweeps_the_outbox_every_minute() -> None:
    from governance.celery import app

    app.finalize()
    entry = app.conf.beat_schedule["sweep-notifications"]
    assert entry["task"] == "registry_app.tasks.sweep_notifications" and entry["task"] in app.tasks
    assert entry["schedule"] == 60.0


def test_a_daily_digest_reader_gets_reminders_at_the_digest_hour(
    mailoutbox: list[Any], reviewers: dict[str, Any], package, settings: Any
) -> None:
    from registry_app.notifications.outbox import next_digest_at

    NotificationPreference.objects.create(user=reviewers["fairness"], daily=[NotificationKind.SLA_REMINDER])
    _age(package, SLA + 1)
    now = timezone.now()
    notifications.send_sla_reminders(now)
    notifications_send_due(now=now)
    assert sorted(m.to[0] for m in mailoutbox) == ["connie@example.com", "lena@example.com"]
    notifications_send_due(now=next_digest_at(now))
    assert [m.to[0] for m in mailoutbox[2:]] == ["farid@example.com"]


def test_registrant_gets_no_reminder(mailoutbox: list[Any], reviewers: dict[str, Any]) -> None:
    from tests.factories import user_context

    package = ModelPackageFactory(created_by=user_context("connie"), approval_status=ApprovalStatus.PENDING)
    _age(package, SLA + 1)
    send_sla_reminders_task()
    assert sorted(m.to[0] for m in mailoutbox) == ["farid@example.com", "lena@example.com"]
