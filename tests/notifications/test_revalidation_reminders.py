"""Issue 15: revalidation reminders: the daily beat e-mails who may sign (not the registrant), once per due date."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from registry_app.models import ApprovalPolicy, Decision, GroupWatcher, Notification, NotificationKind
from registry_app.models.registry import ApprovalStatus
from registry_app.models.signoffs import EMAIL_KINDS
from registry_app.notifications.revalidation import send_revalidation_reminders
from registry_app.tasks import send_revalidation_reminders_task
from tests.factories import ModelPackageFactory, ModelPackageGroupFactory, user_context

from .conftest import SITE, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def monthly() -> None:
    ApprovalPolicy.objects.create(
        name="high", spec={"name": "high", "revalidate_every_days": 30, "revalidation_grace_days": 10}, is_default=True
    )


def _approved(days_ago: int, **kw: Any) -> Any:
    group = ModelPackageGroupFactory(name="credit-risk")
    package = ModelPackageFactory(group=group, version=3, approval_status=ApprovalStatus.APPROVED, **kw)
    decision = Decision.objects.create(package=package, kind="policy", status="Approved")
    Decision.objects.filter(pk=decision.pk).update(created_at=timezone.now() - dt.timedelta(days=days_ago))
    return package


def test_due_version_reminds_role_holders_and_watchers_once_per_due_date(
    mailoutbox: list[Any], reviewers: dict[str, Any], outsider: Any
) -> None:
    package = _approved(33, created_by=user_context("lena"))  # lena registered it: she may not sign
    watcher = make_user("wanda")
    GroupWatcher.objects.create(user=watcher, group=package.group)
    assert send_revalidation_reminders_task() >= 2
    to = sorted(m.to[0] for m in mailoutbox)
    assert to == ["connie@example.com", "farid@example.com", "wanda@example.com"]
    message = next(m for m in mailoutbox if m.to == ["farid@example.com"])
    assert message.subject == "[Model governance] Revalidation due: credit-risk v3"
    assert f"{SITE}/packages/credit-risk/3/" in message.body
    assert "is due for revalidation since" in message.body and "policy high (every 30 days)" in message.body
    keys = set(Notification.objects.values_list("key", flat=True))
    assert len(keys) == 1 and keys.pop().startswith("revalidation:")

    assert send_revalidation_reminders(timezone.now() + dt.timedelta(hours=5)) == 1  # the beat runs again
    assert Notification.objects.count() == 3  # ... and writes nothing new (same due date)


def test_overdue_is_told_once_more_and_current_not_at_all(mailoutbox: list[Any], reviewers: dict[str, Any]) -> None:
    package = _approved(35)
    send_revalidation_reminders()
    assert Notification.objects.filter(package=package).count() == 3
    send_revalidation_reminders(timezone.now() + dt.timedelta(days=7))  # past the 10 days' grace
    overdue = Notification.objects.filter(package=package, key__endswith=":overdue")
    assert overdue.count() == 3 and overdue.first().payload["state"] == "overdue"  # type: ignore[union-attr]
    Notification.objects.all().delete()
    package.group.packages.update(approval_status=ApprovalStatus.PENDING)
    assert send_revalidation_reminders() == 0


def test_the_kind_is_an_email_kind_and_the_beat_runs_daily() -> None:
    from governance.celery import app

    assert NotificationKind.REVALIDATION_DUE in EMAIL_KINDS
    app.finalize()
    entry = app.conf.beat_schedule["revalidation-reminders"]
    assert entry["task"] == "registry_app.tasks.send_revalidation_reminders" and entry["task"] in app.tasks
    assert len(entry["schedule"].hour) == 1 and len(entry["schedule"].minute) == 1
