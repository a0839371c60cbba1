"""Delivery: SMTP failures are recorded and retried, sent rows are never re-sent, claims are exclusive."""

from __future__ import annotations

import datetime as dt
import smtplib
from typing import Any
from unittest import mock

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from registry_app.models import Notification, NotificationKind
from registry_app.notifications import delivery
from registry_app.tasks import (
    notify_conflict_task,
    notify_decided_task,
    notify_review_requested_task,
    send_sla_reminders_task,
)

pytestmark = pytest.mark.django_db


class FlakyBackend(EmailBackend):
    """locmem, but refuses the first ``failures`` messages to the given address."""

    failures: dict[str, int] = {}

    def send_messages(self, messages: Any) -> int:
        for message in messages:
            left = self.failures.get(message.to[0], 0)
            if left:
                self.failures[message.to[0]] = left - 1
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


@pytest.fixture
def flaky(settings: Any, mailoutbox: list[Any]) -> type[FlakyBackend]:
    settings.EMAIL_BACKEND = f"{__name__}.FlakyBackend"
    FlakyBackend.failures = {}
    return FlakyBackend


@pytest.mark.parametrize(
    "task", [notify_review_requested_task, notify_decided_task, notify_conflict_task, send_sla_reminders_task]
)
def test_tasks_autoretry_smtp_and_os_errors_with_backoff(task: Any) -> None:
    assert smtplib.SMTPException in task.autoretry_for and OSError in task.autoretry_for
    assert task.max_retries == 6
    assert task.retry_backoff and task.retry_jitter


def test_failure_marks_failed_raises_for_retry_and_retry_sends_only_the_rest(
    flaky: type[FlakyBackend], reviewers: dict[str, Any], package
) -> None:
    flaky.failures = {"farid@example.com": 1}
    with pytest.raises(smtplib.SMTPServerDisconnected):
        notify_review_requested_task.run(package.pk)  # .run: the body, without Celery's retry wrapper
    assert sorted(m.to[0] for m in mail.outbox) == ["connie@example.com", "lena@example.com"]
    failed = Notification.objects.get(recipient=reviewers["fairness"])
    assert failed.state == Notification.State.FAILED
    assert "SMTPServerDisconnected" in failed.last_error and failed.attempts == 1 and failed.sent_at is None

    assert notify_review_requested_task.run(package.pk) == 1  # the retry
    assert sorted(m.to[0] for m in mail.outbox) == ["connie@example.com", "farid@example.com", "lena@example.com"]
    failed.refresh_from_db()
    assert (failed.state, failed.attempts, failed.last_error) == (Notification.State.SENT, 2, "")


def test_celery_retries_the_task_until_sent(
    flaky: type[FlakyBackend], eager: None, reviewers: dict[str, Any], package
) -> None:
    flaky.failures = {"farid@example.com": 2}
    with mock.patch("celery.app.task.Task.retry", wraps=notify_review_requested_task.retry) as retry:
        notify_review_requested_task.apply(args=[package.pk])
    assert retry.call_count == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["connie@example.com", "farid@example.com", "lena@example.com"]
    assert Notification.objects.get(recipient=reviewers["fairness"]).attempts == 3


def test_sent_rows_are_never_resent(mailoutbox: list[Any], reviewers: dict[str, Any], package) -> None:
    notify_review_requested_task(package.pk)
    Notification.objects.update(sent_at=None)  # even with the lease column cleared, "sent" is final
    notify_review_requested_task(package.pk)
    assert len(mailoutbox) == 3


def test_a_row_claimed_by_another_worker_is_skipped_until_its_lease_expires(
    mailoutbox: list[Any], reviewers: dict[str, Any], package
) -> None:
    lena = reviewers["ml-lead"]
    Notification.objects.create(
        package=package, kind=NotificationKind.REVIEW_REQUESTED, recipient=lena, key="", sent_at=timezone.now()
    )
    notify_review_requested_task(package.pk)
    assert "lena@example.com" not in [m.to[0] for m in mailoutbox]

    Notification.objects.filter(recipient=lena).update(
        sent_at=timezone.now() - delivery.CLAIM_LEASE - dt.timedelta(seconds=1)
    )
    notify_review_requested_task(package.pk)
    assert [m.to[0] for m in mailoutbox].count("lena@example.com") == 1


def test_claim_is_a_conditional_update(reviewers: dict[str, Any], package) -> None:
    note = Notification.objects.create(
        package=package, kind=NotificationKind.REVIEW_REQUESTED, recipient=reviewers["ml-lead"], key=""
    )
    now = timezone.now()
    assert delivery._claim(note, now) is True
    assert delivery._claim(note, now) is False  # the second worker loses


def test_default_backend_writes_files_a_person_can_open(
    settings: Any, tmp_path: Any, reviewers: dict[str, Any], package
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    notify_review_requested_task(package.pk)
    files = list(tmp_path.iterdir())
    assert files
    content = "".join(f.read_text() for f in files)
    assert content.count("Subject: [Model governance] Review requested: credit-risk v3") == 3
    assert "text/plain" in content and "text/html" in content
